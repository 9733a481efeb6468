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
