"""The stages a recipe's IR flows through, in order: bind, statistics, steerability, selection, evaluation, metrics; `run` chains them."""
