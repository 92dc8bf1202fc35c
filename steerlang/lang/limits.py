"""The front end's size limits: where a limit, with its own diagnostic, is the honest answer.

Every input gets an answer in time and memory near-linear in its size (issue "Bounded"); some
small inputs would still ask for huge work after parsing (`features 0..100000000` lists 10^8
ids, a 5,000-digit number is past Python's int-to-string limit, concepts that double at each
of 10,000 levels). Each limit is far above what a real recipe writes, and each has a code:

- E011 `MAX_BRACKETS`: brackets open at once on one line;
- E012 `MAX_NUMBER_CHARS`: characters in one number literal;
- E115 `MAX_TEXT_CHARS`: characters in one recipe (includes: `sources.MAX_BYTES`, E114). Why
  1 MiB: the longest realistic recipe lists features explicitly, and every feature of the
  widest SAE we load (49,152 ids at about 7 characters each, `12345, `) is about 350 KB; 1 MiB
  leaves three times that. The front end's time is linear in the text, so this limit is what
  bounds it: `benchmarks/fuzz_recipes.py --at-limit` checks the slowest shapes we know at
  exactly 1 MiB against the fuzz bound (2 s + 20 µs per character, 23 s there; measured
  14.6 s on the shared 2-core machine at load about 3);
- E116 `MAX_RANGE_VALUES` / `MAX_LISTED_VALUES`: values one list of layers, tokens or feature
  ids selects, and all such lists of a recipe together (a 40-character line may name a
  million, so without the total 1 MiB of such lines would list tens of billions);
- E117 `MAX_RULES`: rules in one recipe, includes counted;
- E118 `MAX_CONCEPT_DEPTH` / `MAX_CONCEPT_NODES`: how deeply concepts refer to concepts, and
  the size of a concept's condition once the concepts it uses are written out;
- E119: what still exhausts Python's recursion limit (never expected; no E499 for it).
"""

from __future__ import annotations

MAX_BRACKETS = 100
MAX_NUMBER_CHARS = 40
MAX_TEXT_CHARS = 1024 * 1024
MAX_RANGE_VALUES = 1 << 20
MAX_LISTED_VALUES = 2 * MAX_RANGE_VALUES  # all lists of one recipe together
MAX_RULES = 100_000
MAX_CONCEPT_DEPTH = 32
MAX_CONCEPT_NODES = 10_000
