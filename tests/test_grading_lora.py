"""The stage-7 checks: correct solutions in other styles pass; realistic mistakes fail by name."""

import re

import pytest

from llmkit_instructor.grading import GradingError
from llmkit_instructor.grading.lora import (
    check_count_trainable,
    check_freeze_and_add_lora,
    check_linear_with_lora,
    check_lora_layer,
    check_merge_lora,
    check_replace_linear_with_lora,
)
from llmkit_solutions import lora as ref
from tests.grading_helpers import mutate, notebook, reference_source

HEADER = "import copy\nimport math\nimport torch\nfrom torch import nn\nfrom llmkit.errors import LLMKitError\n"
GIVEN = HEADER + reference_source(ref.check_rank_alpha)  # the notebook gives check_rank_alpha
ANSWERS = ("LoRALayer", "LinearWithLoRA", "replace_linear_with_lora", "count_trainable", "freeze_and_add_lora",
           "merge_lora")
SOURCES = {name: reference_source(getattr(ref, name)) for name in ANSWERS}
CHECKS = {"LoRALayer": check_lora_layer, "LinearWithLoRA": check_linear_with_lora,
          "replace_linear_with_lora": check_replace_linear_with_lora, "count_trainable": check_count_trainable,
          "freeze_and_add_lora": check_freeze_and_add_lora, "merge_lora": check_merge_lora}


def solved(**replace):
    """A notebook namespace with every stage-7 answer; ``replace`` swaps one answer's source."""
    return notebook(GIVEN + "".join({**SOURCES, **replace}.values()))


def mutant(name, old, new):
    return solved(**{name: mutate(SOURCES[name], old, new)})[name]


@pytest.mark.parametrize("name", ANSWERS)
def test_the_reference_written_in_a_notebook_passes(name):
    CHECKS[name](solved()[name])


# --------------------------------------------------------------------------- other correct styles

OTHER_LORA_LAYER = '''
class LoRALayer(nn.Module):
    def __init__(self, in_dim, out_dim, rank, alpha):
        super().__init__()
        self.A = nn.Parameter(torch.randn(in_dim, rank) / rank ** 0.5)   # Gaussian A: fine too
        self.B = nn.Parameter(torch.zeros(rank, out_dim))
        self.alpha, self.rank = alpha, rank

    def forward(self, x):
        return (x @ self.A) @ (self.B * (self.alpha / self.rank))

    def delta_weight(self):
        return torch.einsum("ir,ro->oi", self.A, self.B) * self.alpha / self.rank
'''
INLINE_LINEAR = '''
class LinearWithLoRA(nn.Module):
    """No LoRALayer: the two matrices live on the wrapper itself."""
    def __init__(self, linear, rank, alpha):
        super().__init__()
        self.linear = linear
        self.A = nn.Parameter(torch.empty(linear.in_features, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(rank, linear.out_features))
        self.scale = alpha / rank

    def forward(self, x):
        return self.linear(x) + self.scale * (x @ self.A @ self.B)

    def merged_linear(self):
        merged = nn.Linear(self.linear.in_features, self.linear.out_features, bias=self.linear.bias is not None)
        with torch.no_grad():
            merged.weight.copy_(self.linear.weight + self.scale * (self.A @ self.B).T)
            if self.linear.bias is not None:
                merged.bias.copy_(self.linear.bias)
        return merged
'''
OTHER_REPLACE = '''
def replace_linear_with_lora(model, rank, alpha):
    targets = [name for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    for name in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LinearWithLoRA(getattr(parent, child), rank, alpha))
'''
OTHER_COUNT = '''
def count_trainable(model):
    trainable = total = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total
'''
OTHER_FREEZE = '''
def freeze_and_add_lora(model, rank, alpha):
    model.requires_grad_(False)
    replace_linear_with_lora(model, rank, alpha)
'''
OTHER_MERGE = '''
def merge_lora(model, inplace=True):
    if not inplace:
        model = copy.deepcopy(model)
    for name, module in list(model.named_modules()):
        if isinstance(module, LinearWithLoRA):
            parent_name, _, child = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            setattr(parent, child, module.merged_linear())
    return model
'''


@pytest.mark.parametrize("name, code", [
    ("LoRALayer", OTHER_LORA_LAYER), ("LinearWithLoRA", INLINE_LINEAR), ("replace_linear_with_lora", OTHER_REPLACE),
    ("count_trainable", OTHER_COUNT), ("freeze_and_add_lora", OTHER_FREEZE), ("merge_lora", OTHER_MERGE),
])
def test_other_correct_styles_pass(name, code):
    CHECKS[name](solved(**{name: code})[name])


# --------------------------------------------------------------------------- mistakes, each named

@pytest.mark.parametrize("old, new, hint", [
    ("torch.zeros(rank, out_dim)", "torch.randn(rank, out_dim)", "B must start at zero"),
    ("return self.scaling * (x @ self.A @ self.B)", "return x @ self.A @ self.B", "multiply x @ A @ B by alpha / rank"),
    ("self.scaling = alpha / rank", "self.scaling = alpha", "scale it by alpha / rank"),
    ("nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))", "nn.init.zeros_(self.A)", "A must start random"),
    ("return (self.scaling * (self.A @ self.B)).T", "return self.scaling * (self.A @ self.B)", "(out_dim, in_dim)"),
    ("torch.empty(in_dim, rank)", "torch.empty(rank, in_dim)", "A is (in_dim, rank)"),
])
def test_lora_layer_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_lora_layer(mutant("LoRALayer", old, new))


@pytest.mark.parametrize("old, new, hint", [
    ("return self.linear(x) + self.lora(x)", "return self.lora(x)", "add it to the base layer's output"),
    ("return self.linear(x) + self.lora(x)", "return self.linear(x)", "the LoRA update is not added"),
    ("merged = copy.deepcopy(self.linear)", "merged = self.linear", "merge into a copy"),
    ("delta = self.lora.delta_weight().to(merged.weight.dtype)",
     "delta = self.lora.scaling * (self.lora.A @ self.lora.B)", "transpose it to nn.Linear's"),
])
def test_linear_with_lora_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_linear_with_lora(mutant("LinearWithLoRA", old, new))


@pytest.mark.parametrize("old, new, hint", [
    ("        elif not isinstance(module, LinearWithLoRA):  # never wrap an adapted layer a second time\n"
     "            replace_linear_with_lora(module, rank, alpha)\n", "", "nested layers were not reached"),
    ("setattr(model, name, LinearWithLoRA(module, rank, alpha))", "module = LinearWithLoRA(module, rank, alpha)",
     "rebinding the loop variable"),
    ("setattr(model, name, LinearWithLoRA(module, rank, alpha))",
     "setattr(model, name + '_lora', LinearWithLoRA(module, rank, alpha))", "added beside the layer"),
    ("LinearWithLoRA(module, rank, alpha))", "LinearWithLoRA(module, 1, alpha))", "pass rank and alpha through"),
])
def test_replace_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_replace_linear_with_lora(mutant("replace_linear_with_lora", old, new))


@pytest.mark.parametrize("old, new, hint", [
    ("for p in model.parameters() if p.requires_grad)", "for p in model.parameters())", "count only parameters"),
    ("return trainable, total", "return total, trainable", "wrong order"),
    ("sum(p.numel() for p in model.parameters())", "sum(t.numel() for t in model.state_dict().values())",
     "state_dict() also holds buffers"),
])
def test_count_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_count_trainable(mutant("count_trainable", old, new))


FROZEN_AFTER = '''
def freeze_and_add_lora(model, rank, alpha):
    replace_linear_with_lora(model, rank, alpha)
    for param in model.parameters():
        param.requires_grad = False
    return model
'''


def test_freeze_mistakes_are_named():
    not_frozen = mutant("freeze_and_add_lora", "        param.requires_grad = False\n", "        pass\n")
    with pytest.raises(GradingError, match=re.escape("the base weights still train")):
        check_freeze_and_add_lora(not_frozen)
    with pytest.raises(GradingError, match=re.escape("freeze the model first, then add LoRA")):
        check_freeze_and_add_lora(solved(freeze_and_add_lora=FROZEN_AFTER)["freeze_and_add_lora"])


@pytest.mark.parametrize("old, new, hint", [
    ("            else:\n                walk(child)\n", "", "inside the blocks were not merged"),
    ("target = model if inplace else copy.deepcopy(model)", "target = model", "merge a deep copy"),
    ("    walk(target)\n    return target", "    walk(target)", "should return the merged model"),
])
def test_merge_mistakes_are_named(old, new, hint):
    with pytest.raises(GradingError, match=re.escape(hint)):
        check_merge_lora(mutant("merge_lora", old, new))


def test_a_wrong_lora_layer_costs_only_its_own_exercise():
    ns = solved(LoRALayer=mutate(SOURCES["LoRALayer"], "self.scaling = alpha / rank", "self.scaling = alpha"))
    for name in ANSWERS[1:]:
        CHECKS[name](ns[name])
    with pytest.raises(GradingError):
        check_lora_layer(ns["LoRALayer"])


def test_a_wrong_merged_linear_also_fails_a_merge_that_relies_on_it_only_once():
    """merge_lora calling a broken merged_linear passes (graded with the reference wrapper)."""
    ns = solved(LinearWithLoRA=mutate(SOURCES["LinearWithLoRA"], "merged.weight.add_(delta)", "pass"))
    check_merge_lora(ns["merge_lora"])
    with pytest.raises(GradingError, match="lost the LoRA update"):
        check_linear_with_lora(ns["LinearWithLoRA"])


def test_importing_subclassing_or_wrapping_the_reference_earns_nothing():
    ns = notebook("from llmkit_solutions.lora import LoRALayer, replace_linear_with_lora")
    with pytest.raises(GradingError, match="imported from llmkit_solutions.lora"):
        check_lora_layer(ns["LoRALayer"])
    sub = notebook("import llmkit_solutions.lora as l\nclass LinearWithLoRA(l.LinearWithLoRA):\n    pass")
    with pytest.raises(GradingError, match="subclasses LinearWithLoRA"):
        check_linear_with_lora(sub["LinearWithLoRA"])
    wrapped = notebook("from llmkit.finetune import apply_lora\n"
                       "def replace_linear_with_lora(model, rank, alpha):\n    return apply_lora(model, rank, alpha)\n")
    with pytest.raises(GradingError, match="calls the reference solution apply_lora"):
        check_replace_linear_with_lora(wrapped["replace_linear_with_lora"])


def test_a_crashing_class_is_a_failed_check_not_a_crash():
    code = mutate(SOURCES["LoRALayer"], "return self.scaling * (x @ self.A @ self.B)", "return x @ self.B @ self.A")
    with pytest.raises(GradingError, match="raised RuntimeError"):
        check_lora_layer(solved(LoRALayer=code)["LoRALayer"])


def test_layers_wrapped_with_another_class_are_named():
    """A replace that wraps with someone else's LoRA class (e.g. the kit's) is not the exercise's."""
    other = SOURCES["LinearWithLoRA"].replace("class LinearWithLoRA", "class TheirLoRA")
    replace = SOURCES["replace_linear_with_lora"].replace("LinearWithLoRA(module, rank, alpha)",
                                                          "TheirLoRA(module, rank, alpha)")
    ns = solved(replace_linear_with_lora=other + replace)
    with pytest.raises(GradingError, match="not your LinearWithLoRA"):
        check_replace_linear_with_lora(ns["replace_linear_with_lora"])


# Hints the course's mistake table (course/mutants/07-lora.json) leaves to this unit test.
RARER_MISTAKES = [
    ("LoRALayer", "self.scaling = alpha / rank", "self.scaling = rank / alpha", "rank_over_alpha"),
    ("LoRALayer", "return (self.scaling * (self.A @ self.B)).T", "return (self.A @ self.B).T", "dw_no_scale"),
    ("count_trainable", "total = sum(p.numel() for p in model.parameters())",
     "total = sum(p.numel() for m in model.modules() for p in m.parameters())", "per_module"),
    ("merge_lora", "setattr(module, name, child.merged_linear())", "setattr(module, name, child.linear)",
     "merge_dropped"),
]


@pytest.mark.parametrize("name, old, new, key", RARER_MISTAKES)
def test_rarer_mistakes_are_named(name, old, new, key):
    from llmkit_instructor.grading.lora import HINTS

    with pytest.raises(GradingError, match=re.escape(HINTS[key])):
        CHECKS[name](mutant(name, old, new))


def test_merge_lora_must_merge_the_model_itself_when_inplace():
    from llmkit_instructor.grading.lora import HINTS

    code = mutate(SOURCES["merge_lora"], "target = model if inplace else copy.deepcopy(model)",
                  "target = copy.deepcopy(model)")
    with pytest.raises(GradingError, match=re.escape(HINTS["inplace_ignored"])):
        check_merge_lora(solved(merge_lora=code)["merge_lora"])
