"""The two plan levels every stage agrees on: the Recipe IR and the Intervention plan.

Data flows one way: text -> AST -> **RecipeIR** (symbolic, model-free, produced without torch)
-> statistics -> selection -> **InterventionPlan** (concrete feature ids) -> hooks -> metrics.
Both are versioned pydantic models with a published JSON Schema (`docs/schema/`), so they can be
stored, diffed and executed later without re-parsing the recipe text.

This module must never import torch.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from steerlang.facts import SiteKind

IR_SCHEMA_VERSION = 1
PLAN_SCHEMA_VERSION = 1

TokenScope = Literal["all", "cls", "patches"] | list[int]
ActionOp = Literal["suppress", "clamp", "scale", "add", "mean_ablate"]
ACTION_OPS: tuple[str, ...] = ("suppress", "clamp", "scale", "add", "mean_ablate")
CompareOp = Literal["<", "<=", ">", ">=", "==", "!="]
ArithOp = Literal["+", "-", "*", "/"]
ErrorMode = Literal["preserve_error", "reconstruct"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Span(_Model):
    """Where a construct came from: 1-based line/column in code points, end exclusive."""

    file: str | None = None
    line: int
    column: int
    end_line: int
    end_column: int
    start_pos: int = 0
    end_pos: int = 0


# --------------------------------------------------------------------------------------------
# Expressions (predicates over per-feature statistics, and concept definitions over columns)
# --------------------------------------------------------------------------------------------


class Num(_Model):
    kind: Literal["num"] = "num"
    value: float


class Str(_Model):
    kind: Literal["str"] = "str"
    value: str


class Bool(_Model):
    kind: Literal["bool"] = "bool"
    value: bool


class ParamRef(_Model):
    """A reference to a recipe param; its value lives in `RecipeIR.params` so `--param`
    overrides change the value without recompiling the rules."""

    kind: Literal["param"] = "param"
    name: str


# Statistic functions available to predicates. Each one is a per-feature column of the
# statistics table; `stat_key` below names the column. Ranges drive the E2xx range checks.
StatFn = Literal[
    "corr",  # Pearson correlation of pooled activation with binary concept c, in [-1, 1]
    "mean",  # mean pooled activation (no concept), or given concept c (negated: given not c)
    "freq",  # firing frequency: fraction of tokens in scope with activation > 0, in [0, 1]
    "max",  # maximum activation over tokens in scope
    "steerability",  # S_f = sum_v Delta_f(v)^2 at the sweep strength, in [0, 2]
    "promotes",  # Delta_f(word): mean probability change of `word` when clamped, in [-1, 1]
    "top_concept",  # the vocabulary word argmax_v Delta_f(v) (a string)
    "id",  # the feature index itself
]

STAT_RANGES: dict[str, tuple[float, float] | None] = {
    "corr": (-1.0, 1.0),
    "freq": (0.0, 1.0),
    "steerability": (0.0, 2.0),
    "promotes": (-1.0, 1.0),
    "mean": None,
    "max": None,
    "top_concept": None,
    "id": (0.0, float("inf")),
}


class Stat(_Model):
    """A resolved per-feature statistic, e.g. corr(water), mean(not water), promotes("text")."""

    kind: Literal["stat"] = "stat"
    fn: StatFn
    concept: str | None = None
    negated: bool = False
    word: str | None = None


def stat_key(stat: Stat) -> str:
    """The column name of a statistic in the statistics table (shared by selection and explain)."""
    if stat.fn in ("corr", "mean") and stat.concept is not None:
        return f"{stat.fn}{'_not' if stat.negated else ''}:{stat.concept}"
    if stat.fn == "promotes":
        return f"promotes:{stat.word}"
    return stat.fn


class Column(_Model):
    """A dataset column, only legal inside `concept NAME = ...` definitions."""

    kind: Literal["column"] = "column"
    name: str


class Compare(_Model):
    kind: Literal["compare"] = "compare"
    op: CompareOp
    left: Expr
    right: Expr


class Arith(_Model):
    kind: Literal["arith"] = "arith"
    op: ArithOp
    left: Expr
    right: Expr


class Neg(_Model):
    kind: Literal["neg"] = "neg"
    arg: Expr


class And(_Model):
    kind: Literal["and"] = "and"
    args: list[Expr]


class Or(_Model):
    kind: Literal["or"] = "or"
    args: list[Expr]


class Not(_Model):
    kind: Literal["not"] = "not"
    arg: Expr


# Functions of expressions (docs/language.md §5.3). abs/min/max/log act row by row; rank and
# quantile look at the whole column: every feature at the rule's site.
FnName = Literal["abs", "min", "max", "log", "quantile", "rank"]
FN_NAMES: tuple[str, ...] = ("abs", "min", "max", "log", "quantile", "rank")


class Fn(_Model):
    """`abs(E)`, `min(A, B)`, `max(A, B)`, `log(E)` (NaN where E <= 0), `quantile(E, q)` (the
    q-quantile of E over the site's features), `rank(E)` (1 = the largest E)."""

    kind: Literal["fn"] = "fn"
    fn: FnName
    args: list[Expr]


Expr = Annotated[
    Num | Str | Bool | ParamRef | Stat | Column | Compare | Arith | Neg | And | Or | Not | Fn,
    Field(discriminator="kind"),
]

for _m in (Compare, Arith, Neg, And, Or, Not, Fn):
    _m.model_rebuild()


# --------------------------------------------------------------------------------------------
# Recipe IR
# --------------------------------------------------------------------------------------------


class Scope(_Model):
    layers: list[int]
    site: SiteKind = "resid_post"
    tokens: TokenScope = "all"


class Action(_Model):
    """suppress: a'=0; clamp: a'=v; scale: a'=k*a; add: a'=a+v; mean_ablate: a'=mean on stats split.

    A `Stat` value (`clamp SEL to mean(c)`) is a per-feature target: each feature gets its own
    value of that statistic."""

    op: ActionOp
    value: Num | ParamRef | Stat | None = Field(default=None, discriminator="kind")


class WhereSelector(_Model):
    kind: Literal["where"] = "where"
    where: Expr


class TopSelector(_Model):
    """`top K features by E [where P]`; `bottom K` is order="asc"."""

    kind: Literal["top"] = "top"
    k: int | ParamRef
    by: Expr
    where: Expr | None = None
    order: Literal["desc", "asc"] = "desc"


class IdsSelector(_Model):
    kind: Literal["ids"] = "ids"
    ids: list[int]


class RandomSelector(_Model):
    """`random K features [where P]`: K features drawn uniformly without replacement from
    those satisfying P, seeded by the `seed` setting, the rule's index, the layer and the site
    (pipeline/selection.py, `random_draw`), so every run draws the same features."""

    kind: Literal["random"] = "random"
    k: int | ParamRef
    where: Expr | None = None


Selector = Annotated[
    WhereSelector | TopSelector | IdsSelector | RandomSelector, Field(discriminator="kind")
]


class Rule(_Model):
    name: str  # user-given (`rule NAME:`) or generated as `rule_<index+1>`
    index: int  # position in file order after includes are expanded; later wins conflicts
    scope: Scope
    action: Action
    selector: Selector
    span: Span | None = None


class ParamDef(_Model):
    name: str
    type: Literal["float", "int", "bool", "str"]
    value: float | int | bool | str
    span: Span | None = None


class ConceptDef(_Model):
    name: str
    expr: Expr  # over Column / literals with comparisons and and/or/not
    span: Span | None = None


class Task(_Model):
    kind: Literal["classify"] = "classify"
    label: str  # dataset column holding the class index
    classes: list[str]
    prompts: list[str] = Field(default_factory=lambda: ["a photo of a {}."])


# Recipe-level settings (`set NAME = value`). The language layer validates names and types
# against this table; the runtime reads the same defaults.
SETTING_DEFAULTS: dict[str, Any] = {
    "stats_split": "train",  # split the feature statistics are computed on (unsteered model)
    "eval_split": "test",  # split baseline and steered metrics are reported on
    "probe_split": "train",  # split a linear probe is trained on (classifier = "linear_probe")
    "classifier": "zero_shot",  # zero_shot | linear_probe
    "pooling": "mean",  # how token activations pool to one value per image: mean | max
    "batch_size": 64,
    "seed": 0,
    "stats_limit": 0,  # 0 = the whole split
    "eval_limit": 0,
    "attack": "none",  # none | typographic (write a wrong class word on every eval image)
    "attack_style": "auto",  # auto | dp | note: how the attack draws the word
    "stats_images": "clean",  # clean | attacked | both: which copies the statistics see
    "steer_strength": 150.0,  # steerability clamp strength s (author default)
    "steer_threshold": 0.1,  # S_f above which a feature counts as steerable (author default)
    "steer_images": 192,  # N images for the steerability readout (author default)
    "logit_scale": 100.0,  # readout scale for steerability (author default: fixed 100)
    "vocabulary": "default",  # steerability vocabulary file or "default"
    "steer_curve": "",  # e.g. "5,10,20,50,150": also sweep these strengths for the report's curve
    "error_mode": "preserve_error",
    "gallery_k": 8,  # images per feature card (the running top-k of the statistics pass; 0 = off)
    "gallery_cards": 12,  # feature cards per rule and site, strongest first
}


class RecipeIR(_Model):
    schema_version: Literal[1] = IR_SCHEMA_VERSION
    language_version: int = 1  # the `steer N` header
    name: str
    description: str = ""
    source: str | None = None  # path of the root recipe file
    source_hash: str | None = None  # sha256 of the root file and every include, in order
    model: str = "default"
    dataset: str | None = None
    task: Task | None = None
    groups: list[str] = Field(default_factory=list)
    concepts: dict[str, ConceptDef] = Field(default_factory=dict)
    params: dict[str, ParamDef] = Field(default_factory=dict)
    saes: dict[str, str] = Field(default_factory=dict)  # "layer:site" -> SAE reference
    settings: dict[str, float | int | bool | str] = Field(default_factory=dict)
    includes: list[str] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)

    def setting(self, name: str) -> Any:
        return self.settings.get(name, SETTING_DEFAULTS[name])


# --------------------------------------------------------------------------------------------
# Intervention plan (what the runtime executes and `steer plan` prints)
# --------------------------------------------------------------------------------------------


class FeatureEdit(_Model):
    feature: int
    op: ActionOp
    value: float | None = None  # clamp/add target, scale factor, or the mean for mean_ablate
    tokens: TokenScope = "all"
    rule: str  # name of the rule that chose (and won) this feature
    rule_index: int
    stats: dict[str, float | str] = Field(default_factory=dict)  # the values the rule looked at


class SiteRef(_Model):
    layer: int
    site: SiteKind = "resid_post"

    @property
    def hook_name(self) -> str:
        """TransformerLens / ViT-Prisma canonical name, e.g. blocks.7.hook_resid_post."""
        return f"blocks.{self.layer}.hook_{self.site}"


class SitePlan(_Model):
    layer: int
    site: SiteKind = "resid_post"
    sae: str  # SAE reference as resolved by the profile
    sae_hash: str | None = None
    d_sae: int | None = None
    error_mode: ErrorMode = "preserve_error"
    edits: list[FeatureEdit] = Field(default_factory=list)


class Override(_Model):
    """A (site, feature) chosen by several rules: the later rule in file order wins."""

    layer: int
    site: SiteKind
    feature: int
    winner: str
    overridden: list[str]


class InterventionPlan(_Model):
    schema_version: Literal[1] = PLAN_SCHEMA_VERSION
    recipe: str
    recipe_hash: str | None = None
    model: str
    stats_key: str | None = None  # content key of the statistics the selection used
    params: dict[str, float | int | bool | str] = Field(default_factory=dict)
    sites: list[SitePlan] = Field(default_factory=list)
    overrides: list[Override] = Field(default_factory=list)

    @property
    def n_edits(self) -> int:
        return sum(len(s.edits) for s in self.sites)
