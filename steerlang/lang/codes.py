"""The registry of diagnostic codes: a short title and the long explanation `steer explain-code`
prints (like `rustc --explain`). Codes are stable: never renumber or reuse one; retire it instead.

Ranges: E0xx syntax, E1xx names and includes, E2xx types and ranges, W3xx lints (warnings),
E4xx plan validation. Every code here has a golden case in `tests/lang/bad/`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CodeInfo:
    code: str
    title: str
    explanation: str

    @property
    def severity(self) -> str:
        return "warning" if self.code.startswith("W") else "error"


_RAW: dict[str, tuple[str, str]] = {
    # ---------------------------------------------------------------- E0xx syntax
    "E001": (
        "missing version header",
        """Every recipe must start with the language version header `steer 1` (comments and
blank lines may come first). The header lets future versions of steerlang change the syntax
without silently changing the meaning of old recipes.

Erroneous:

    recipe waterbirds "remove the background shortcut"

Fixed:

    steer 1
    recipe waterbirds "remove the background shortcut"
""",
    ),
    "E002": (
        "unknown statement",
        """A line starts with a word that does not begin any statement. Statements start with
`recipe`, `model`, `dataset`, `task`, `groups`, `concept`, `param`, `set`, `include`, `sae`,
`rule` or `at`.

Erroneous:

    paramter thr = 0.3

Fixed:

    param thr = 0.3
""",
    ),
    "E003": (
        "unknown action",
        """After a rule's scope (`at layer 7`, optionally `site ...` and `tokens ...`) comes the
action. The actions are `suppress`, `clamp ... to V` (also spelled `set ... to V`),
`scale ... by K`, `add V to ...` and `mean-ablate`.

Erroneous:

    at layer 7 supress features where corr(water) > 0.3

Fixed:

    at layer 7 suppress features where corr(water) > 0.3
""",
    ),
    "E004": (
        "missing layer number",
        """`at layer` and `at layers` must be followed by layer numbers: one (`at layer 7`), a
range (`at layers 5..8`) or a comma-separated list of both (`at layers 3..5, 9`). Layers are
0-based block indices of the vision transformer.

Erroneous:

    at layer suppress features where corr(water) > 0.3

Fixed:

    at layer 7 suppress features where corr(water) > 0.3
""",
    ),
    "E005": (
        "missing value",
        """An operator, `=`, `to` or `by` is not followed by the value it needs. Statements end at
the end of the line, so the value must be on the same line.

Erroneous:

    at layer 7 suppress features where corr(water) >

Fixed:

    at layer 7 suppress features where corr(water) > 0.3
""",
    ),
    "E006": (
        "unclosed parenthesis or bracket",
        """A `(` or `[` is not closed before the end of the line. Statements cannot span lines,
so every bracket must be closed on the line that opens it.

Erroneous:

    at layer 7 suppress features where (corr(water) > 0.3 and freq() < 0.5

Fixed:

    at layer 7 suppress features where (corr(water) > 0.3 and freq() < 0.5)
""",
    ),
    "E007": (
        "unexpected character",
        """The recipe contains a character that is not part of the language, such as `@`, `;` or
`&&`. Words and names use ASCII letters, digits and `_`; boolean operators are written `and`,
`or` and `not`; comments start with `#`.

Erroneous:

    at layer 7 suppress features where corr(water) > 0.3 && freq() < 0.5

Fixed:

    at layer 7 suppress features where corr(water) > 0.3 and freq() < 0.5
""",
    ),
    "E008": (
        "unterminated string",
        """A string literal starts with `"` but has no closing `"` on the same line. Strings
cannot span lines; write `\\n` for a line break and `\\"` for a quote inside a string.

Erroneous:

    recipe demo "remove the background

Fixed:

    recipe demo "remove the background"
""",
    ),
    "E009": (
        "unexpected token",
        """The parser found a word or symbol where the grammar does not allow it. The message says
what was found and the help lists what could come at that point. See `docs/language.md` for
the syntax of each statement.

Erroneous:

    at layer 7 suppress features where corr(water) > 0.3 0.5

Fixed:

    at layer 7 suppress features where corr(water) > 0.3
""",
    ),
    "E010": (
        "missing feature selector",
        """An action must say which features it applies to: `features where P`,
`top K features by E [where P]`, `bottom K features by E [where P]`, `feature 12` or
`features 1, 2, 5..9`.

Erroneous:

    at layer 7 suppress where corr(water) > 0.3

Fixed:

    at layer 7 suppress features where corr(water) > 0.3
""",
    ),
    "E011": (
        "brackets nested too deeply",
        """More than 100 brackets (`(` or `[`) are open at once on one line. No real predicate
needs that; the limit keeps every recipe's check fast and its diagnostics readable. The rest
of the line is not read.

Erroneous:

    at layer 7 suppress features where ((((((((((((((( … corr(water) > 0.3

Fixed: define parts of the condition as concepts, or split it into several rules.
""",
    ),
    "E012": (
        "number literal too long",
        """A number is written with more than 40 characters. No layer, feature id, count or
threshold needs more digits than that (a float keeps about 17 significant digits); use
exponent notation for very large or small values.

Erroneous:

    at layer 7 clamp feature 12 to 100000000000000000000000000000000000000000000

Fixed:

    at layer 7 clamp feature 12 to 1e44
""",
    ),
    # ---------------------------------------------------------------- E1xx names
    "E101": (
        "unknown concept",
        """`corr(c)` and `mean(c)` take a concept declared in the recipe (or an included file)
with `concept NAME = <condition over dataset columns>`. Concepts are declared, not looked up
in the data, so `steer check` can catch typos without loading anything.

Erroneous:

    concept water = place == 1
    at layer 7 suppress features where corr(watr) > 0.3

Fixed:

    at layer 7 suppress features where corr(water) > 0.3
""",
    ),
    "E102": (
        "unknown function",
        """Predicates can call the per-feature statistics `corr(c)`, `mean()`, `mean(c)`,
`mean(not c)`, `freq()`, `max()`, `steerability()`, `promotes("word")`, `top_concept()` and
`id()`. There are no user-defined functions.

Erroneous:

    at layer 7 suppress features where corelation(water) > 0.3

Fixed:

    at layer 7 suppress features where corr(water) > 0.3
""",
    ),
    "E103": (
        "unknown name",
        """A bare name in a predicate, a value or a `top K` count must be a param declared with
`param NAME = literal`. Concepts are used through statistics (`corr(water)`), not as values.
`--param NAME=VALUE` on the command line can only override a declared param.

Erroneous:

    param thr = 0.3
    at layer 7 suppress features where corr(water) > thresh

Fixed:

    at layer 7 suppress features where corr(water) > thr
""",
    ),
    "E104": (
        "unknown setting",
        """`set NAME = value` changes one of the recipe settings (`stats_split`, `eval_split`,
`classifier`, `pooling`, `batch_size`, `seed`, `attack`, `steer_strength`, ...). The full table
with defaults is in `docs/language.md`.

Erroneous:

    set stat_split = "train"

Fixed:

    set stats_split = "train"
""",
    ),
    "E105": (
        "unknown column",
        """When the recipe's dataset is one steerlang knows (`waterbirds`, `celeba`,
`typographic`, `imagefolder`), the column names used by concepts, `task classify COLUMN` and
`groups` are checked against that dataset's metadata.

Erroneous:

    dataset waterbirds
    concept water = plase == 1

Fixed:

    concept water = place == 1
""",
    ),
    "E106": (
        "include not found",
        """`include "path.steer"` reads another recipe file. The path is relative to the file that
contains the `include`, and the file must exist and be UTF-8 text (see also E112, E113, E114).

Erroneous:

    include "comon.steer"

Fixed:

    include "common.steer"
""",
    ),
    "E107": (
        "include cycle",
        """A file includes itself, directly or through other files. Includes are expanded in
place, so a cycle would never end; the notes list the chain of includes.

Erroneous (a.steer):

    include "b.steer"    # and b.steer contains: include "a.steer"

Fixed: move what both files need into a third file that includes neither.
""",
    ),
    "E108": (
        "duplicate rule name",
        """Rule names identify rules in `steer explain`, in the plan's override list and in
reports, so each name may be used once (across included files too). Unnamed rules are called
`rule_1`, `rule_2`, ... by their position.

Erroneous:

    rule background: at layer 7 suppress features where corr(water) > 0.3
    rule background: at layer 8 suppress features where corr(water) > 0.3

Fixed:

    rule background_l7: at layer 7 suppress features where corr(water) > 0.3
    rule background_l8: at layer 8 suppress features where corr(water) > 0.3
""",
    ),
    "E109": (
        "duplicate definition",
        """A param or concept name is defined twice. Params and concepts share one namespace
across the recipe and its includes.

Erroneous:

    param thr = 0.3
    param thr = 0.4

Fixed:

    param thr = 0.4
""",
    ),
    "E110": (
        "reserved word used as a name",
        """Keywords of the language are reserved and cannot name a param, concept, rule or
recipe, so a name never changes meaning depending on where it appears (`not(x)` is always
negation). The keyword list is in `docs/language.md`.

Erroneous:

    param top = 10

Fixed:

    param k = 10
""",
    ),
    "E111": (
        "duplicate declaration",
        """`recipe`, `model`, `dataset`, `task` and `groups` describe the whole recipe and may
appear once, counting included files.

Erroneous:

    model default
    model "openclip:ViT-B-32@laion2b_s34b_b79k"

Fixed: keep one `model` line.
""",
    ),
    "E112": (
        "include outside the recipe's folder",
        """An included file must lie inside the folder of the recipe being checked, or a folder
below it, after symbolic links are resolved (the language server allows the whole workspace
folder). A recipe may come from someone else, and without this rule `include
"../../etc/passwd"` would read any file on the machine. When you trust the recipe, pass
`--allow-include-outside` (to `check`, `compile`, `fmt`, `run`, `plan`, `explain` and `sweep`;
`allowIncludeOutside` in the language server's initialization options).

Erroneous (recipes/waterbirds.steer):

    include "../../shared/common.steer"

Fixed: copy or move `common.steer` into `recipes/` (or a folder below it):

    include "shared/common.steer"
""",
    ),
    "E113": (
        "include is not a regular .steer file",
        """Only recipe files can be included: regular files whose name ends in `.steer` (also
after symbolic links are resolved). Directories, FIFOs, devices, sockets and the kernel's
`/proc` and `/sys` files are refused without being opened, so an include can neither hang
the command nor read a file that is not a recipe.

Erroneous:

    include "notes.txt"

Fixed: rename the file to `notes.steer` if it is a recipe.
""",
    ),
    "E114": (
        "included file is not a recipe",
        """An included file must itself be a recipe: `steer 1` first (after comments and blank
lines) and no syntax errors. Otherwise it is reported once, at the `include` line, and none of
its lines are shown, since it may be any file holding anything (a key, a password). Check the
file on its own with `steer check FILE` to see its errors.

Erroneous:

    include "secrets.steer"     # a file that does not start with `steer 1`

Fixed: include a recipe file, or add `steer 1` at the top of the file and fix its errors.
""",
    ),
    "E115": (
        "recipe too large",
        """A recipe has more than 1,048,576 characters (1 MiB). Recipes are a few kilobytes, and
even one listing every feature of a 49,152-feature SAE explicitly is about 350 KB; a larger
text is almost certainly not a recipe (a data file opened by mistake), and checking it would
take long. Included files have the same limit (E114).

Fixed: split the recipe into several recipes, or check the right file.
""",
    ),
    "E116": (
        "list of values too long",
        """A list of layers, token indices or feature ids names more than 1,048,576 values
(ranges counted by their width), or all such lists of a recipe together name more than
2,097,152. Every value would
be listed in memory and in the compiled recipe, so `features 0..100000000` alone would take
gigabytes, and a few lines of `features 0..1000000` would cost seconds each.

Erroneous:

    at layer 7 suppress features 0..100000000

Fixed: select features by a condition instead:

    at layer 7 suppress features where freq() > 0
""",
    ),
    "E117": (
        "too many rules",
        """A recipe (with its includes) has more than 100,000 rules. The rules after the limit
are not checked. Split the recipe into several recipes.
""",
    ),
    "E118": (
        "concepts nested too deeply",
        """Concepts may be defined from other concepts, and the compiled recipe writes each used
concept out in full. Concepts that refer to concepts more than 32 levels deep, or a concept
that, written out, nests more than 100 levels or has more than 10,000 terms (all concepts
together: 100,000), are refused: `concept c2 = c1 and c1` repeated doubles at every level.

Erroneous:

    concept c1 = c0 and c0
    concept c2 = c1 and c1
    # … 20 more levels

Fixed: define each concept from dataset columns, with a few levels at most.
""",
    ),
    "E119": (
        "recipe nested too deeply to compile",
        """Compiling this recipe ran out of Python's recursion limit. The language's own limits
(E011, E118, E213) should make this impossible; if you see it, the recipe nests something
those limits miss. Split nested expressions and chains of concepts, and please report the
recipe.
""",
    ),
    # ---------------------------------------------------------------- E2xx types and ranges
    "E201": (
        "layer out of range",
        """The model's depth is known (from `model`, or `--layers N`), and a rule or `sae` line
names a layer the model does not have. Layers are 0-based: a 12-block ViT-B/32 has layers
0..11.

Erroneous (model default, 12 layers):

    at layer 12 suppress features where corr(water) > 0.3

Fixed:

    at layer 11 suppress features where corr(water) > 0.3
""",
    ),
    "E202": (
        "threshold outside the statistic's range",
        """A statistic is compared with a constant it can never reach, so the comparison is
always true or always false: `corr` and `promotes` lie in [-1, 1], `freq` in [0, 1],
`steerability` in [0, 2] and `id` is at least 0.

Erroneous:

    at layer 7 suppress features where corr(water) > 1.5

Fixed:

    at layer 7 suppress features where corr(water) > 0.5
""",
    ),
    "E203": (
        "top count must be positive",
        """`top K features`, `bottom K features` and `random K features` select K features; K
must be a whole number of at least 1 (directly or through a param).

Erroneous:

    at layer 7 suppress top 0 features by corr(water)

Fixed:

    at layer 7 suppress top 10 features by corr(water)
""",
    ),
    "E204": (
        "type mismatch",
        """An expression has the wrong type for where it is used. Predicates after `where` and
concept definitions must be true/false conditions; `by` expressions and action values must
be numbers; `and`, `or` and `not` combine conditions; arithmetic and `<`, `<=`, `>`, `>=`
compare numbers; strings are only compared with `==` and `!=`; statistics cannot appear in a
concept definition and dataset columns only appear there.

Erroneous:

    at layer 7 suppress features where corr(water)

Fixed:

    at layer 7 suppress features where corr(water) > 0.3
""",
    ),
    "E205": (
        "wrong number of arguments",
        """A statistic function is called with too many or too few arguments: `corr(c)` and
`promotes("word")` take one, `mean` takes zero or one, `freq()`, `max()`, `steerability()`,
`top_concept()` and `id()` take none.

Erroneous:

    at layer 7 suppress features where corr() > 0.3

Fixed:

    at layer 7 suppress features where corr(water) > 0.3
""",
    ),
    "E206": (
        "invalid argument",
        """A statistic function got an argument of the wrong kind: `corr` and `mean` take a
concept name (`mean` also `not CONCEPT`), `promotes` takes a string (or a string param).

Erroneous:

    at layer 9 suppress features where promotes(text) > 0.1

Fixed:

    at layer 9 suppress features where promotes("text") > 0.1
""",
    ),
    "E207": (
        "unsupported language version",
        """The header names a language version this steerlang does not know. This release
understands `steer 1`.

Erroneous:

    steer 2

Fixed:

    steer 1
""",
    ),
    "E208": (
        "invalid setting value",
        """A `set` line gives a value of the wrong type or outside the allowed choices. Each
setting has the type of its default (for example `batch_size` is a whole number, `classifier`
is one of "zero_shot" or "linear_probe"). The table is in `docs/language.md`.

Erroneous:

    set batch_size = "large"

Fixed:

    set batch_size = 128
""",
    ),
    "E209": (
        "invalid param override",
        """`--param NAME=VALUE` must give a value of the param's declared type: a param declared
with `0.3` is a float, `10` an int, `true` a bool and `"text"` a string. Ints are accepted
where floats are expected.

Erroneous:

    steer compile recipe.steer --param k=0.5     # with: param k = 10

Fixed:

    steer compile recipe.steer --param k=5
""",
    ),
    "E210": (
        "reversed range",
        """A range `A..B` must have A <= B; both ends are included.

Erroneous:

    at layers 8..5 suppress features where corr(water) > 0.3

Fixed:

    at layers 5..8 suppress features where corr(water) > 0.3
""",
    ),
    "E211": (
        "scope given twice",
        """A rule's scope may name `site` once and `tokens` once.

Erroneous:

    at layer 7 site attn_out site mlp_out suppress features where corr(water) > 0.3

Fixed:

    at layer 7 site mlp_out suppress features where corr(water) > 0.3
""",
    ),
    "E212": (
        "invalid task",
        """`task classify LABEL as ["a", "b", ...]` needs at least two distinct class names, and
prompts must be non-empty.

Erroneous:

    task classify y as ["waterbird"]

Fixed:

    task classify y as ["landbird", "waterbird"]
""",
    ),
    "E213": (
        "expression nested too deeply",
        """An expression nests more than 100 levels of operators, `not` or parentheses-free
sub-expressions. No real predicate needs that; the limit keeps checking and formatting
predictable. Split the condition into simpler parts or several rules.
""",
    ),
    "E214": (
        "model has no CLS token",
        """`tokens cls` names the class token at index 0, but some vision towers have none:
SigLIP and SigLIP 2 pool their patch tokens with an attention head, so every token is a patch.
The recipe's model is one of them (steerlang/facts.py knows them by name; a loaded model says
so itself at run time).

Erroneous:

    model "openclip:ViT-B-16-SigLIP@webli"
    at layer 9 tokens cls suppress features where corr(water) > 0.3

Fixed:

    model "openclip:ViT-B-16-SigLIP@webli"
    at layer 9 tokens patches suppress features where corr(water) > 0.3
""",
    ),
    "E240": (
        "param is not a whole number",
        """A layer, a token index or a feature id may be written as a declared param
(`param L = 7` … `at layer L`), but that param must be a whole number. The diagnostic points
at the use; the declaration is shown beside it.

Erroneous:

    param L = 7.5
    at layer L suppress features where corr(water) > 0.3

Fixed:

    param L = 7
    at layer L suppress features where corr(water) > 0.3
""",
    ),
    "E241": (
        "negative param in a list of layers, tokens or features",
        """Layers, token indices and feature ids count from 0, so a param used as one must not be
negative (also after a `--param` override).

Erroneous:

    param L = -1
    at layer L suppress features where corr(water) > 0.3

Fixed:

    param L = 0
    at layer L suppress features where corr(water) > 0.3
""",
    ),
    # ---------------------------------------------------------------- W3xx lints
    "E220": (
        "log of a non-positive number",
        """`log(E)` is the natural logarithm, defined for positive numbers only. When E is a
constant (a number, a param, or arithmetic on them) that is zero or negative, the expression
has no value and the recipe is rejected. Over features, `log` of a value <= 0 is NaN: such a
feature fails every comparison and is never ranked, and `steer run` warns (W325) with the
number of features affected.

Erroneous:

    param floor = 0
    at layer 7 suppress features where log(max()) > log(floor)

Fixed:

    param floor = 0.01
    at layer 7 suppress features where log(max()) > log(floor)
""",
    ),
    "E221": (
        "invalid quantile level",
        """`quantile(E, q)` is the q-quantile of E over every feature at the rule's site
(numpy's linear interpolation, NaN values left out). The level q must be one number between 0
and 1, written as a number or a numeric param; a per-feature expression is not a level.

Erroneous:

    at layer 7 suppress features where corr(water) > quantile(corr(water), 99)

Fixed:

    at layer 7 suppress features where corr(water) > quantile(corr(water), 0.99)
""",
    ),
    "E222": (
        "invalid per-feature target",
        """`clamp SEL to mean(c)` (also `set … to`) sets each selected feature to its own value
of a statistic: `mean()`, `mean(c)`, `mean(not c)` or `max()`. Only `clamp`/`set` take such a
target (`scale` takes a factor and `add` an amount, both one number), and only those
statistics are activation values a feature can be set to.

Erroneous:

    at layer 7 scale features where corr(water) > 0.3 by mean(water)
    at layer 7 clamp features where corr(water) > 0.3 to corr(water)

Fixed:

    at layer 7 clamp features where corr(water) > 0.3 to mean(not water)
""",
    ),
    "W301": (
        "unused param",
        """A param is declared but never used, so overriding it with `--param` would change
nothing. Use it or delete it.

Example:

    param thr = 0.3
    at layer 7 suppress features where corr(water) > 0.4   # did you mean `> thr`?
""",
    ),
    "W302": (
        "unused concept",
        """A concept is declared but no statistic uses it. Concepts only matter through
`corr(c)` and `mean(c)`, so an unused one costs a statistics column and does nothing.

Example:

    concept land = place == 0      # never used
""",
    ),
    "W303": (
        "overlapping rules",
        """Two rules act on the same layer and site and may select the same features. Rules apply
in file order and a later rule overrides an earlier one on the same (layer, site, feature), so
the earlier rule's edit is lost wherever they overlap; `steer explain` shows the winner of
each feature. Make the selections disjoint (different layers, sites, explicit ids, or
predicates that exclude each other) or merge the rules.

Example:

    at layer 7 suppress features where corr(water) > 0.3
    at layers 5..8 scale top 10 features by corr(water) by 0.5   # overrides at layer 7
""",
    ),
    "W304": (
        "comparison is always true",
        """A statistic is compared with the edge of its range in a way that every feature
satisfies (`corr(c) >= -1`, `freq() >= 0`), so the condition filters nothing.

Example:

    at layer 7 suppress features where freq() >= 0    # suppresses every feature
""",
    ),
    "W305": (
        "comparison is never true",
        """A statistic is compared with the edge of its range in a way no feature can satisfy
(`corr(c) > 1`, `freq() < 0`), so the rule selects nothing.

Example:

    at layer 7 suppress features where corr(water) > 1
""",
    ),
    "W306": (
        "contradictory predicate",
        """The conditions joined by `and` exclude each other (`corr(c) > 0.5 and corr(c) < 0.2`),
so no feature can satisfy the predicate and the rule selects nothing. Perhaps `or` was meant.

Example:

    at layer 7 suppress features where corr(water) > 0.5 and corr(water) < 0.2
""",
    ),
    "W307": (
        "setting given twice",
        """A `set` line (or an `sae` line for the same layer and site) repeats an earlier one;
the later value wins. Delete one of them.

Example:

    set pooling = "mean"
    set pooling = "max"
""",
    ),
    "W308": (
        "file included twice",
        """The same file is included more than once; its statements are used the first time
only. Delete the extra `include`.
""",
    ),
    "W309": (
        "prompt without placeholder",
        """Prompt templates are filled with each class name through the `{}` placeholder. A
prompt without `{}` gives the same text for every class and cannot tell them apart.

Example:

    task classify y as ["landbird", "waterbird"] prompt "a photo of a bird."   # add {}
""",
    ),
    "W310": (
        "value listed twice",
        """A layer, feature id or token index appears twice in one list (for example
`at layers 5..8, 7`), which is redundant and usually a typo.
""",
    ),
    "W323": (
        "random draw includes features that never fire",
        """`random K features` without `where` draws from every feature of the SAE, including
features that are never active on the statistics split. Suppressing such a feature changes
nothing, so a random control drawn from them is weaker than it looks. Draw from the features
that can matter, with the same filter as the selection it controls.

Example:

    at layer 7 suppress random 10 features                       # W323
    at layer 7 suppress random 10 features where freq() > 0      # live features only
""",
    ),
    # ---------------------------------------------------------------- E4xx plan validation
    "E401": (
        "invalid plan value",
        """A value passed the syntax check but is not valid in the Recipe IR, for example a site
that is not one of `resid_post`, `resid_pre`, `attn_out`, `mlp_out`, or a token scope that is
not `all`, `cls`, `patches` or a list of indices. The IR is validated by the same pydantic
models the runtime reads (`steerlang/plan.py`); each validation error is mapped back to the
text that produced it.

Erroneous:

    at layer 7 site resid_mid suppress features where corr(water) > 0.3

Fixed:

    at layer 7 site resid_post suppress features where corr(water) > 0.3
""",
    ),
    "E499": (
        "internal compiler error",
        """steerlang itself failed while compiling this recipe. This is a bug in steerlang, not in
the recipe: please report it with the recipe and the output of `steer --debug check FILE`.
""",
    ),
}

CODES: dict[str, CodeInfo] = {c: CodeInfo(c, t, e) for c, (t, e) in _RAW.items()}


def explain(code: str) -> CodeInfo | None:
    return CODES.get(code.strip().upper())
