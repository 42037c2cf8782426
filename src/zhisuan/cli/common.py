"""Shared CLI plumbing: loading inputs with errors that name the field, and the ASSUMPTION marker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from zhisuan.i18n import environment_lang, label

if TYPE_CHECKING:
    from zhisuan.model import JobSpec, Network


# CI logs and pipes are not terminals; Rich would wrap tables at 80 columns there.
console = Console(width=None if Console().is_terminal else 150)
err_console = Console(stderr=True, width=None if Console(stderr=True).is_terminal else 150)
ASSUMED = "†"
LANG = [environment_lang()]  # en or zh-CN: `--lang`, else $ZHISUAN_LANG / $LC_ALL / $LANG


def L(text: str, **fields: object) -> str:
    """A label or message in the chosen language, its `{fields}` filled."""
    return label(text, LANG[0]).format(**fields) if fields else label(text, LANG[0])
NetworkFile = Annotated[Path, typer.Option("--network", "-n", help="network file: centers, pools, tenants, profile")]


def money(cny: float) -> str:
    """¥ with the cents where they matter: two jobs at ¥0.53 and ¥0.67 must not both read 1."""
    return f"{cny:,.0f}" if abs(cny) >= 100 else f"{cny:,.2f}"


def kilos(kg: float) -> str:
    """kgCO2 to three significant digits (0.015 and 0.019 differ), whole kilos from 100 up."""
    return f"{kg:,.0f}" if abs(kg) >= 100 else f"{kg:.3g}"


def center_name(center: object) -> str:
    """One name per center per language: its Chinese name in Chinese, where the network gives one."""
    zh = getattr(center, "name_zh", None)
    return str(zh) if zh and LANG[0].startswith("zh") else str(getattr(center, "name", center))


def short_chip(name: str) -> str:
    """The catalog's first alias (`910b`, `a100`) is what people say; fall back to the model name."""
    from zhisuan.catalog import load_catalog

    chip = load_catalog().lookup(name)
    return chip.aliases[0].upper() if chip.aliases else chip.name


def fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[bold red]{L('error:')}[/] {message}", soft_wrap=True)  # one line, however long
    raise typer.Exit(code)


def seconds(value: str, option: str) -> float:
    """A duration option (`90m`, `2h`, `30d`, `3600`) in seconds, or a usage error naming the option."""
    from zhisuan.model.units import parse_duration

    try:
        return parse_duration(value)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint=option) from None


def read_network(path: Path) -> Network:
    """A network file, its scheduler profile checked too (a typo there must not mean the default)."""
    from zhisuan.model import SpecError, load_network
    from zhisuan.scheduler.profiles import policy_for

    try:
        network = load_network(path)
        policy_for(network.scheduler)
        return network
    except FileNotFoundError:
        fail(f"network file not found: {path}")
    except SpecError as e:
        fail(f"invalid network file {path}: {e}")


def read_spec(path: Path, network: Network | None = None) -> JobSpec:
    from zhisuan.model import SpecError, parse_job_spec

    try:
        spec = parse_job_spec(path.read_text(encoding="utf-8"))
        if network is not None:
            from zhisuan.scheduler.feasibility import check_spec
            from zhisuan.scheduler.profiles import policy_for

            check_spec(spec, network, policy_for(network.scheduler))
        return spec
    except FileNotFoundError:
        fail(f"job spec not found: {path}")
    except SpecError as e:
        fail(f"invalid job spec {path}: {e}")
