"""The run report: built from the pipeline's results as plain data, shown in the terminal, as JSON and as HTML."""
