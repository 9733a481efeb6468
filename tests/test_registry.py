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
    """``BUILTIN_NAMES = {...}`` as tfpilot/builtin_names.py writes it: one name a line, its
    parameters one space-separated string (split over lines where long)."""
    lines = ["BUILTIN_NAMES: dict[str, dict[str, tuple[tuple[str, ...], str | None, dict[str, Any]]]] = {"]
    for kind, names in sorted(catalogue.items()):
        lines.append(f"    {kind!r}: {{")
        for name, (tags, params, extra) in sorted(names.items()):
            words = None if params is None else " ".join(params)
            line = f"        {name!r}: ({tags!r}, {words!r}, {extra!r}),"
            if len(line) > 116 and words:
                cut = words.rfind(" ", 0, 60) + 1
                line = f"        {name!r}: ({tags!r}, {words[:cut]!r}\n            {words[cut:]!r}, {extra!r}),"
            lines.append(line)
        lines.append("    },")
    return "\n".join([*lines, "}"])


def _as_written(catalogue: dict) -> dict:
    return {kind: {name: (tags, None if params is None else " ".join(params), extra)
                   for name, (tags, params, extra) in names.items()} for kind, names in catalogue.items()}


def test_the_static_built_in_names_are_the_real_registrations():
    """tfpilot/builtin_names.py (what a config is validated against without importing TensorFlow)
    cannot drift from the registrations: on failure, paste the printed dict into that file."""
    from tfpilot.builtin_names import BUILTIN_NAMES
    from tfpilot.registry import MODELS, SCHEDULES

    real = _real_catalogue()
    stale = "tfpilot/builtin_names.py is out of date; it should read:\n"
    assert BUILTIN_NAMES == _as_written(real), stale + _render(real)
    assert MODELS.info("fast_cnn") == MODELS.builtins["fast_cnn"]
    assert SCHEDULES.info("cosine").extra["keys"] == ("warmup_epochs", "min_lr_ratio")


def test_an_unknown_name_says_how_to_provide_your_own():
    from tfpilot.registry import LOSSES

    with pytest.raises(RegistryError, match=r"unknown loss 'my_loss'.*`tfpilot --import MODULE") as err:
        LOSSES.entry("my_loss")
    assert "tfpilot.plugins" in str(err.value) and "imports: [MODULE]" in str(err.value)
