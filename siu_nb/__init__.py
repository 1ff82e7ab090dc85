"""Single Image Unlearning (SIU) for multimodal LLMs, with the MMUBench metrics and attacks.

The common case, in three lines::

    from siu_nb import forget, assess
    res = forget("Fuklun Vikdron")   # the shipped toy model, its benchmark and its unlearning budget
    rep = assess(res)                # every MMUBench metric and attack, before and after

The names below are imported on first use, so `import siu_nb` stays cheap (no torch). (`evaluate` is not among
them: `siu_nb.evaluate` is the module; its function is `siu_nb.evaluate.evaluate`.)
"""
__version__ = "0.0.1"

_LAZY = dict(forget="siu_nb.cli", assess="siu_nb.cli", load_mllm="siu_nb.models", load_toy="siu_nb.toy", toy_bench="siu_nb.toy")
__all__ = ["__version__", *_LAZY]

def __getattr__(name):
    if name not in _LAZY: raise AttributeError(f"module 'siu_nb' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value

def __dir__(): return sorted(set(globals()) | set(_LAZY))
