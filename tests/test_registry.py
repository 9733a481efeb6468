import pytest

from tfpilot.registry import Registry, RegistryError


def test_register_get_list_and_did_you_mean():
    reg: Registry = Registry("widget")

    @reg.register("alpha", tags=("a",))
    def alpha():
        """First widget."""

    reg.add("beta", object())
    assert reg.get("alpha") is alpha
    assert reg.list() == ["alpha", "beta"]
    assert reg.list("al*") == ["alpha"]
    assert reg.list(tag="a") == ["alpha"]
    assert reg.entry("alpha").description == "First widget."
    with pytest.raises(RegistryError, match="Did you mean 'alpha'") as err:
        reg.get("alpah")
    assert isinstance(err.value, KeyError) and isinstance(err.value, ValueError)
    assert "Known widgets: alpha, beta" in str(err.value)


def test_double_registration_of_a_different_object_fails():
    reg: Registry = Registry("widget")
    reg.add("x", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.add("x", 2)


def test_autoload_imports_modules_on_first_lookup():
    reg: Registry = Registry("model", autoload=("tfpilot.models.mlp",))
    # The module registers into tfpilot's MODELS, not this registry: autoload just imports.
    assert reg.list() == []
    import sys

    assert "tfpilot.models.mlp" in sys.modules


def _real_catalogue() -> dict:
    """What the lazily loaded registries hold once their modules are imported."""
    from tfpilot.registry import LOSSES, MODELS, OPTIMIZERS, SCHEDULES, Info

    return {reg.kind: {e.name: (Info.of(e).tags, Info.of(e).params, Info.of(e).extra) for e in reg.entries()}
            for reg in (LOSSES, MODELS, OPTIMIZERS, SCHEDULES)}


def _render(catalogue: dict) -> str:
    import pprint

    return "BUILTIN_NAMES = " + pprint.pformat(catalogue, width=104, sort_dicts=True)


def test_the_static_built_in_names_are_the_real_registrations():
    """tfpilot/builtin_names.py (what a config is validated against without importing TensorFlow)
    cannot drift from the registrations: on failure, paste the printed dict into that file."""
    from tfpilot.builtin_names import BUILTIN_NAMES
    from tfpilot.registry import MODELS, SCHEDULES

    real = _real_catalogue()
    assert BUILTIN_NAMES == real, "tfpilot/builtin_names.py is out of date; it should read:\n" + _render(real)
    assert MODELS.info("fast_cnn") == MODELS.builtins["fast_cnn"]
    assert SCHEDULES.info("cosine").extra["keys"] == ("warmup_epochs", "min_lr_ratio")


def test_an_unknown_name_says_how_to_provide_your_own():
    from tfpilot.registry import LOSSES

    with pytest.raises(RegistryError, match=r"unknown loss 'my_loss'.*`tfpilot --import MODULE") as err:
        LOSSES.entry("my_loss")
    assert "tfpilot.plugins" in str(err.value) and "imports: [MODULE]" in str(err.value)
