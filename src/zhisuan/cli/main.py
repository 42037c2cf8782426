"""The `zhisuan` command."""

from __future__ import annotations

from typing import Annotated

import typer

from zhisuan.cli.agent import agent_command, center_app
from zhisuan.cli.bench import bench_app
from zhisuan.cli.bench_control import bench_app as _control  # noqa: F401  (registers its commands)
from zhisuan.cli.bench_data import bench_app as _data  # noqa: F401  (registers its commands)
from zhisuan.cli.bench_services import bench_app as _services  # noqa: F401  (registers its commands)
from zhisuan.cli.bench_wan import bench_app as _wan  # noqa: F401  (registers its commands)
from zhisuan.cli.billing import bill_command, report_app
from zhisuan.cli.catalog import catalog_command
from zhisuan.cli.client import (
    cancel_command,
    centers_command,
    jobs_command,
    logs_command,
    quote_command,
    show_command,
    submit_command,
)
from zhisuan.cli.common import LANG
from zhisuan.cli.data import data_app
from zhisuan.cli.demo import demo_command
from zhisuan.cli.explain import explain_command
from zhisuan.cli.funds import funds_app
from zhisuan.cli.login import login_command
from zhisuan.cli.network import network_command
from zhisuan.cli.operator import center_app as _operator  # noqa: F401  (registers its commands)
from zhisuan.cli.plan import plan_command
from zhisuan.cli.server import server_command
from zhisuan.cli.services import service_app
from zhisuan.cli.sharing import sharing_command
from zhisuan.cli.sim import sim_command
from zhisuan.cli.tokens import audit_command, token_app
from zhisuan.i18n import environment_lang

app = typer.Typer(
    name="zhisuan",
    help="zhisuan (智算): an open compute-power network for AI computing centers.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: this Typer renders every flag as `<bool>` in its Rich help
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"zhisuan {version('zhisuan')}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="print the version and exit")] = False,
          lang: Annotated[str | None, typer.Option("--lang", metavar="LANG", help="en or zh-CN (default: from "
                                                   "$ZHISUAN_LANG, $LC_ALL or $LANG)")] = None,
          catalog: Annotated[str | None, typer.Option("--catalog", metavar="FILE", help="user catalog (YAML) that "
                                                      "extends or overrides the accelerators (or $ZHISUAN_CATALOG)")]
          = None) -> None:
    """zhisuan (智算): an open compute-power network for AI computing centers."""
    if lang is not None and lang not in ("en", "zh-CN", "zh"):
        raise typer.BadParameter(f"en or zh-CN, got {lang!r}", param_hint="--lang")
    LANG[0] = environment_lang() if lang is None else ("zh-CN" if lang.startswith("zh") else "en")
    if catalog is not None:
        from zhisuan.catalog.accelerators import use_catalog
        from zhisuan.catalog.user import CatalogError

        try:
            use_catalog(catalog)
        except CatalogError as e:
            raise typer.BadParameter(str(e), param_hint="--catalog") from e


app.command("explain")(explain_command)
app.command("catalog")(catalog_command)
app.command("network")(network_command)
app.command("demo")(demo_command)
app.command("sim")(sim_command)
app.command("plan")(plan_command)
app.command("sharing")(sharing_command)
app.command("server")(server_command)
app.command("agent")(agent_command)
app.add_typer(center_app, name="center")
for _name, _command in [("login", login_command), ("submit", submit_command), ("jobs", jobs_command),
                       ("show", show_command), ("logs", logs_command), ("cancel", cancel_command),
                       ("quote", quote_command), ("centers", centers_command)]:
    app.command(_name)(_command)
app.command("bill")(bill_command)
app.command("audit")(audit_command)
app.add_typer(bench_app, name="bench")
app.add_typer(report_app, name="report")
app.add_typer(token_app, name="token")
app.add_typer(funds_app, name="funds")
app.add_typer(service_app, name="service")
app.add_typer(data_app, name="data")

if __name__ == "__main__":
    app()
