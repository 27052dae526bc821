"""Where each value of a training config came from: the YAML file and each `key=value` override, read as
separate OmegaConf layers (in the order they apply), so that an error can name the file or override that set
the key at fault. Also the one-line forms of the errors that reading them can raise."""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, Mapping, Sequence

from .config_ranges import ConfigError

Sources = list[tuple[str, Any]]  # (origin: the file's path or "override key=value", OmegaConf layer)


def read_sources(path: str | Path | None, overrides: Sequence[str]) -> Sources:
    """The file (if any), then each override alone; unreadable ones are a `ConfigError` naming them."""
    from omegaconf import OmegaConf

    sources = []
    if path is not None:
        sources.append((one_line(str(path)), _load_yaml(Path(path))))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. train.steps=100")
        origin = f"override {one_line(item)}"
        try:
            sources.append((origin, OmegaConf.from_dotlist([item])))
        except Exception as err:  # OmegaConf's grammar errors and yaml's parser errors
            raise ConfigError(f"{origin}: {_parse_error(err)}") from None
    return sources


def _load_yaml(path: Path) -> Any:
    """The config file as an OmegaConf mapping; a missing file, bad YAML or a top level that is no mapping is
    named."""
    import yaml
    from omegaconf import DictConfig, ListConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    if path.is_dir():
        raise ConfigError(f"{path}: a directory, not a YAML config file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config file")
    try:
        layer = OmegaConf.load(path)
    except OmegaConfBaseException as err:  # e.g. a `${` that starts no interpolation, with its key
        key = getattr(err, "full_key", None)
        raise ConfigError(f"{path}: {_parse_error(err)}", key or None) from None
    except Exception as err:  # YAML syntax errors come in several types; OmegaConf refuses a scalar top level
        try:
            layer = yaml.safe_load(path.read_text())
        except Exception:
            layer = None
        if isinstance(layer, (dict, type(None))):
            raise ConfigError(f"{path}: not valid YAML ({first_line(err)})") from None
    if not isinstance(layer, DictConfig):
        kinds = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
        kind = kinds.get(type(layer), type(layer).__name__)
        kind = "a list" if isinstance(layer, (list, ListConfig)) else kind
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level "
                          f"(e.g. `train: {{steps: 100}}`), got {kind}")
    return layer


def origin_of(sources: Sources, keys: Sequence[str | None]) -> str | None:
    """The last source that sets the first of `keys` that any source sets; None if none does (a default)."""
    from omegaconf import OmegaConf

    written = [(origin, {k for k, _ in items(OmegaConf.to_container(layer, resolve=False))})
               for origin, layer in sources]
    for key in keys:
        for origin, keys_set in reversed(written):
            if key in keys_set:
                return origin
    return None


def items(data: Any, prefix: str = "") -> typing.Iterator[tuple[str, Any]]:
    """(dotted key, value) of every entry of nested dicts and lists, containers and their contents alike
    (`optim.betas`, then `optim.betas[0]`, `optim.betas[1]`)."""
    entries = data.items() if isinstance(data, Mapping) else enumerate(data) if isinstance(data, list) else ()
    for key, value in entries:
        dotted = f"{prefix}[{key}]" if isinstance(data, list) else f"{prefix}.{key}" if prefix else str(key)
        yield dotted, value
        yield from items(value, dotted)


def one_line(text: str) -> str:
    """`text`, quoted with escapes where it holds a newline or another unprintable character."""
    return text if text.isprintable() else repr(text)


def first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _parse_error(err: Exception) -> str:
    """A value that does not parse, with its key where OmegaConf knows it (a `${` that starts no
    interpolation)."""
    from omegaconf.errors import GrammarParseError

    key = getattr(err, "full_key", None)
    if isinstance(err, GrammarParseError) and key:
        return f"{key}: not a valid ${{...}} interpolation ({first_line(err)}); write \\${{ for a literal ${{"
    return f"{key}: {first_line(err)}" if key else first_line(err)
