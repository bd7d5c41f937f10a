import pytest

from clipstudy.registry import Registry, UnknownNameError


def test_register_get_list():
    r = Registry("widget")

    @r.register("b")
    def b():
        return 2

    r.register("a", obj=1, flavor="x")
    assert r.get("b") is b and r.get("a") == 1
    assert r.list() == ["a", "b"] and "a" in r and len(r) == 2
    assert r.meta("a") == {"flavor": "x"}


def test_unknown_name_lists_valid_names():
    r = Registry("scorer")
    r.register("mcm", obj=1)
    r.register("msp", obj=2)
    with pytest.raises(UnknownNameError) as e:
        r.get("mpc")
    assert str(e.value) == "unknown scorer 'mpc'; valid scorers: mcm, msp"


def test_duplicate_and_type_errors():
    r = Registry("method")
    r.register("x", obj=1)
    with pytest.raises(ValueError):
        r.register("x", obj=2)
    with pytest.raises(TypeError):
        r.get(3)
