// VS Code client for the steerlang language server.
//
// The server is the Python package itself (`python -m steerlang lsp`), so diagnostics, hover,
// completion and formatting are exactly what `steer check` / `steer fmt` do; this file only
// decides which interpreter to start and restarts the server when that choice changes.

import * as vscode from "vscode";
import {
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  TransportKind,
} from "vscode-languageclient/node";

let client: LanguageClient | undefined;
let output: vscode.LogOutputChannel | undefined;

interface PythonExtensionApi {
  settings?: {
    getExecutionDetails?: (resource?: vscode.Uri) => { execCommand?: string[] };
  };
}

// The interpreter precedence: explicit setting, then the Python extension's selected
// environment (so a project venv with steerlang installed just works), then python3/python.
async function resolveInterpreter(): Promise<string[]> {
  const config = vscode.workspace.getConfiguration("steerlang");
  const configured = (config.get<string>("interpreter") ?? "").trim();
  if (configured.length > 0) {
    return [configured];
  }
  const pyExt = vscode.extensions.getExtension<PythonExtensionApi>("ms-python.python");
  if (pyExt) {
    try {
      const api = pyExt.isActive ? pyExt.exports : await pyExt.activate();
      const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
      const exec = api?.settings?.getExecutionDetails?.(folder)?.execCommand;
      if (exec && exec.length > 0) {
        return exec;
      }
    } catch (err) {
      output?.appendLine(`steerlang: could not ask the Python extension for an interpreter: ${err}`);
    }
  }
  return [process.platform === "win32" ? "python" : "python3"];
}

async function startClient(context: vscode.ExtensionContext): Promise<void> {
  const interpreter = await resolveInterpreter();
  const extraArgs = vscode.workspace.getConfiguration("steerlang").get<string[]>("serverArgs") ?? [];
  const [command, ...prefix] = interpreter;
  const args = [...prefix, "-m", "steerlang", "lsp", ...extraArgs];
  output?.appendLine(`steerlang: starting ${command} ${args.join(" ")}`);

  const serverOptions: ServerOptions = {
    run: { command, args, transport: TransportKind.stdio },
    debug: { command, args, transport: TransportKind.stdio },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: "file", language: "steer" },
      { scheme: "untitled", language: "steer" },
    ],
    outputChannel: output,
    synchronize: {
      fileEvents: vscode.workspace.createFileSystemWatcher("**/*.steer"),
    },
  };
  client = new LanguageClient("steerlang", "steerlang language server", serverOptions, clientOptions);
  try {
    await client.start();
  } catch (err) {
    void vscode.window.showErrorMessage(
      `steerlang: could not start "${command} ${args.join(" ")}" (${err}). ` +
        "Install steerlang into that interpreter (pip install -e .) or set steerlang.interpreter.",
    );
  }
  context.subscriptions.push({ dispose: () => void client?.stop() });
}

async function restartClient(context: vscode.ExtensionContext): Promise<void> {
  if (client) {
    const old = client;
    client = undefined;
    await old.stop().catch(() => undefined);
  }
  await startClient(context);
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel("steerlang", { log: true });
  context.subscriptions.push(output);
  context.subscriptions.push(
    vscode.commands.registerCommand("steerlang.restartServer", () => restartClient(context)),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (
        event.affectsConfiguration("steerlang.interpreter") ||
        event.affectsConfiguration("steerlang.serverArgs")
      ) {
        void restartClient(context);
      }
    }),
  );
  await startClient(context);
}

export async function deactivate(): Promise<void> {
  if (client) {
    await client.stop();
    client = undefined;
  }
}
