"""What an option costs and earns: capex from the plan's finance (or the sourced server prices), opex, the
electricity its centers burn and the revenue they bill, then NPV, IRR and payback (metering.finance) on the
option's difference from today's network at the same demand. Every input carries its basis, and one not
sourced stays labelled ASSUMPTION."""

from __future__ import annotations

from dataclasses import dataclass

from zhisuan.catalog.prices import NATIONAL, electricity_prices, server_prices
from zhisuan.metering.finance import irr, npv, payback_years, yearly_flows
from zhisuan.model.jobspec import SpecError
from zhisuan.model.network import Network
from zhisuan.model.plan import Option, Plan, new_nodes
from zhisuan.sim.plan.cells import CellResult, CenterYear

ELECTRICITY = 0.6  # CNY/kWh: ASSUMPTION when neither the plan nor the sourced table prices a province


@dataclass(frozen=True)
class Money:
    capex: float  # CNY, year 0
    opex: float  # CNY a year: maintenance, staff, bandwidth
    electricity: float  # CNY a year (the difference from today for an option)
    revenue: float  # CNY a year (likewise)
    npv: float
    irr: float | None
    payback: float | None  # years
    annual_cost: float  # capex spread over the depreciation years + opex + electricity: the Pareto cost


class Prices:
    """The money inputs of a plan, each with its basis (printed under every report)."""

    def __init__(self, plan: Plan, network: Network) -> None:
        self.plan, self.finance = plan, plan.finance
        self.basis: dict[str, str] = {}
        self.province = {c.name: c.province for c in network.centers}
        for option in plan.options:
            self.province.update({c.name: c.province for c in option.build})
        for chip in sorted({chip for o in plan.options for chip in new_nodes(o, network)}):
            self.server(chip, 8)  # every chip bought must be priced: fail before anything runs

    def _label(self, field: str, what: str) -> str:
        why = self.finance.assumptions.get(field)
        return f"{what}: plan file" + (f" (ASSUMPTION: {why})" if why else "")

    def server(self, chip: str, per_node: int) -> float:
        """CNY for one node of `per_node` devices of `chip`."""
        if chip in self.finance.capex_per_node:
            self.basis[f"server {chip}"] = self._label("capex_per_node", f"{chip} server")
            return self.finance.capex_per_node[chip]
        ref = server_prices().get(chip)
        if ref is None:
            raise SpecError([(f"finance.capex_per_node.{chip}",
                              f"no server price known for {chip}: give one in the plan (CNY per node)")])
        self.basis[f"server {chip}"] = f"{chip} server ¥{ref.value:,.0f} per {ref.per} devices: {ref.basis}"
        return ref.value / ref.per * per_node

    def kwh(self, center: str) -> float:
        if self.finance.electricity_cny_per_kwh is not None:
            self.basis["electricity"] = self._label("electricity_cny_per_kwh", "electricity")
            return self.finance.electricity_cny_per_kwh
        province = self.province.get(center) or ""
        table = electricity_prices()
        ref = table.get(province)
        if ref is not None:
            self.basis[f"electricity {province}"] = f"electricity {province} ¥{ref.value}/kWh: {ref.basis}"
            return ref.value
        ref = table.get(NATIONAL)
        if ref is None:
            self.basis["electricity"] = f"electricity ¥{ELECTRICITY}/kWh flat: ASSUMPTION (no sourced price)"
            return ELECTRICITY
        self.basis[f"electricity {province}"] = (f"electricity {province or center} ¥{ref.value}/kWh: national "
                                                 f"average (no provincial price; ASSUMPTION), {ref.basis}")
        return ref.value

    def electricity(self, centers: tuple[CenterYear, ...]) -> float:
        """CNY a year: each hour's energy at the center's flat price × its zone's time-of-use multiplier."""
        return sum(c.kwh_at_tou * self.kwh(c.center) for c in centers)

    def capex(self, option: Option, network: Network) -> float:
        size = {(c.name, p.name): (p.chip.name, p.devices_per_node) for c in network.centers for p in c.pools}
        total = 0.0
        for a in option.add:
            chip, per_node = size[(a.center, a.pool)]
            total += a.nodes * (self.server(chip, per_node) + self.finance.install_per_node)
        for c in option.build:
            total += self.center_capex(c.name, option, network)
        return total

    def center_capex(self, name: str, option: Option, network: Network) -> float:
        center = next(c for c in option.build if c.name == name)
        nodes = sum(p.nodes * (self.server(p.chip.name, p.devices_per_node) + self.finance.install_per_node)
                    for p in center.pools)
        if self.finance.build_per_center:
            self.basis["build"] = self._label("build_per_center", "building a center")
        return nodes + self.finance.build_per_center

    def retired_maintenance(self, option: Option, network: Network) -> float:
        """CNY a year of maintenance the retired pools no longer cost: the plan's maintenance share of their
        servers' price (a chip with no price anywhere: not counted, and said so in the basis)."""
        pools = {(c.name, p.name): p for c in network.centers for p in c.pools}
        total = 0.0
        for r in option.retire:
            p = pools[(r.center, r.pool)]
            try:
                value = p.nodes * self.server(p.chip.name, p.devices_per_node)
            except SpecError:
                self.basis[f"retire {r.center}/{r.pool}"] = (f"retiring {r.center}/{r.pool}: its maintenance saving "
                                                             f"is not counted (no server price for {p.chip.name})")
                continue
            total += value * self.finance.opex.maintenance_pct / 100.0
        if option.retire:
            self.basis["retire"] = (f"retired pools save their electricity and maintenance "
                                    f"({self.finance.opex.maintenance_pct:g}% of their servers' price a year)")
        return total

    def opex(self, capex: float, centers_built: int) -> float:
        f = self.finance
        return capex * f.opex.maintenance_pct / 100.0 + centers_built * (f.opex.staff_per_year
                                                                          + f.opex.bandwidth_per_year)

    def money(self, capex: float, opex: float, revenue: float, electricity: float) -> Money:
        f = self.finance
        salvage = capex * max(0.0, 1.0 - f.horizon_years / f.depreciation_years)  # straight-line book value
        flows = yearly_flows(capex, revenue, opex + electricity, f.horizon_years, salvage)
        invested = capex > 0  # nothing invested: no rate of return, nothing to pay back
        return Money(capex, opex, electricity, revenue, npv(f.discount_rate, flows), irr(flows) if invested else None,
                     payback_years(flows) if invested else None, capex / f.depreciation_years + opex + electricity)


def option_money(prices: Prices, option: Option, network: Network, cell: CellResult, today: CellResult) -> Money:
    """The option against today's network at the same demand: what it adds in capex, opex, electricity and
    revenue (retiring pools saves their electricity and their maintenance: a negative opex)."""
    capex = prices.capex(option, network)
    opex = prices.opex(capex, len(option.build)) - prices.retired_maintenance(option, network)
    electricity = prices.electricity(cell.centers) - prices.electricity(today.centers)
    return prices.money(capex, opex, cell.revenue - today.revenue, electricity)


def center_money(prices: Prices, option: Option, network: Network, center: CenterYear) -> Money:
    """A built center on its own books: its capex, its opex, its electricity, its revenue."""
    capex = prices.center_capex(center.center, option, network)
    return prices.money(capex, prices.opex(capex, 1), center.revenue, prices.electricity((center,)))
