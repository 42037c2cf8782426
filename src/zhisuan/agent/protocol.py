"""The messages between the network's server and a center's agent: one module both sides import.

Frames are JSON objects tagged by `t`, validated here with every field bounded, so a hostile or broken
peer gets a clear error naming the field and changes nothing. The agent connects out; the server never
dials a center. Commands carry an id and a placement epoch (the job's attempt: a stale start is refused);
events carry the agent's sequence numbers and are resent until acknowledged. Times are never wall-clock
stamps of the agent: a report says how many seconds ago something happened (`*_ago`, from the agent's
monotonic clock) and the server dates it by its own receive time, so an agent whose clock is off still
meters right.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

VERSION = "1.2"  # major.minor: a server takes agents of its major and of its minor or the one before
TUNNEL_SINCE = 1  # the minor from which agents carry tunnels (1.0 agents run jobs, but reach no replica)
DATA_SINCE = 2  # the minor from which agents move datasets between their center's store and the server
CHUNK = 64 << 10  # bytes of a tunnelled answer in one frame
WINDOW = 1 << 20  # bytes of one tunnelled answer an agent may send ahead of what the server has read
MAX_FRAME_TO_AGENT = 16 << 20  # a start carries its job's command and environment (64 KiB + 256 × 32 KiB)
MAX_FRAME_TO_SERVER = 8 << 20  # a log reply is at most 1 MiB of text (escaped in JSON: up to 6×)
MAX_ITEMS = 2000  # events, commands, runs or load entries in one frame
DAY = 86400.0
Handle = Annotated[str, Field(min_length=3, max_length=200, pattern=r"^[A-Za-z0-9._-]+#[0-9]{1,9}$")]
Name = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")]
Seconds = Annotated[float, Field(ge=0, le=400 * DAY)]
Text = Annotated[str, Field(max_length=2000)]
Header = tuple[Annotated[str, Field(max_length=256)], Annotated[str, Field(max_length=8192)]]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


def handle_of(job_id: str, attempt: int) -> str:
    """The network's name for one attempt of a job at a center: known before the start is sent, so a
    start delivered twice is recognised as one."""
    return f"{job_id}#{attempt}"


def split(handle: str) -> tuple[str, int]:
    job, _, attempt = handle.rpartition("#")
    return job, int(attempt)


def compatible(theirs: str, ours: str = VERSION) -> str | None:
    """None when an agent speaking `theirs` may join a server speaking `ours`, else why not (naming both)."""
    try:
        t_major, t_minor = (int(x) for x in theirs.split(".", 1))
        o_major, o_minor = (int(x) for x in ours.split(".", 1))
    except ValueError:
        return f"protocol version {theirs[:20]!r} is not major.minor (the server speaks {ours})"
    if t_major != o_major or not o_minor - 1 <= t_minor <= o_minor:
        return (f"agent protocol {theirs} is not compatible with the server's {ours}: "
                f"upgrade the agent to {o_major}.{o_minor} (or {o_major}.{o_minor - 1})")
    return None


# ---- what a start carries ------------------------------------------------------------------------


class LaunchMsg(_Msg):
    """engines.Launch as sent: the pool by its declared fields (the server is the authority on them)."""

    job_id: Name
    name: Name
    command: str = Field(min_length=1, max_length=64 * 1024)
    pool: dict[str, object]
    nodes: list[Annotated[int, Field(ge=0, le=100_000)]] = Field(min_length=1, max_length=4096)
    devices_per_node: int = Field(ge=0, le=64)
    devices: list[list[Annotated[str, Field(max_length=64)]]] = Field(max_length=4096)
    env: dict[str, str] = Field(default_factory=dict, max_length=300)
    timeout: float | None = Field(None, gt=0, le=400 * DAY)
    image: str | None = Field(None, max_length=512)
    attempt: int = Field(ge=1, le=1_000_000)
    tenant: str = Field("", max_length=64)
    milli: int = Field(0, ge=0, le=1000)
    cpus: float = Field(0.0, ge=0, le=1_000_000)
    memory_gib: float = Field(0.0, ge=0, le=1e9)  # an older server sends none: the engine's default
    on_center_loss: Literal["wait", "requeue", "fail"] = "wait"
    inputs: dict[Annotated[str, Field(max_length=32)], Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict, max_length=16)


class Command(_Msg):
    """What the server asks of a center. Idempotent: a command delivered twice acts once. `epoch` is the
    placement epoch of the run (its attempt); the agent refuses a start older than one it has seen for the
    job and stops an older attempt it still runs when a newer one arrives."""

    id: int = Field(ge=1)
    kind: Literal["start", "stop", "cancel", "adopt", "forget"]
    handle: Handle
    epoch: int = Field(ge=1, le=1_000_000)
    launch: LaunchMsg | None = None


# ---- what an agent reports -----------------------------------------------------------------------


class UsageMsg(_Msg):
    allocated_device_seconds: float = Field(ge=0, le=1e13)
    elapsed_seconds: float = Field(ge=0, le=1e9)
    busy_device_seconds: float | None = Field(None, ge=0, le=1e13)
    source: str = Field("", max_length=200)
    energy_joules: float | None = Field(None, ge=0, le=1e15)


RunState = Literal["starting", "queued", "running", "succeeded", "failed", "refused", "lost"]


class RunReport(_Msg):
    """A run as its center sees it. `started_ago`/`ended_ago`: seconds before this report was sent;
    `ran`: seconds it ran by the agent's monotonic clock (the metered duration after a partition)."""

    handle: Handle
    state: RunState
    exit_code: int | None = Field(None, ge=-1_000_000, le=1_000_000)
    reason: Text = ""
    expected_start_in: Seconds | None = None
    started_ago: Seconds | None = None
    ended_ago: Seconds | None = None
    ran: Seconds | None = None
    host: str | None = Field(None, max_length=255)
    uid: int | None = Field(None, ge=0, le=2**32)
    native: str = Field("", max_length=512)  # the engine's own handle (a Slurm job id), shown to operators
    usage: UsageMsg | None = None


class Sample(_Msg):
    """A running job's measured use at its center (NVML, the center's Prometheus), `ago` seconds before."""

    handle: Handle
    ago: Seconds
    busy: float = Field(ge=0, le=1)
    source: str = Field(max_length=100)
    watts: float | None = Field(None, ge=0, le=100_000)
    memory_gib: float | None = Field(None, ge=0, le=1e6)


class Event(_Msg):
    seq: int = Field(ge=1)
    run: RunReport | None = None
    sample: Sample | None = None


class LoadMsg(_Msg):
    """engines.ExternalLoad: something else on a pool's nodes (the center's own jobs, drained nodes)."""

    id: str = Field(min_length=1, max_length=200)
    pool: Name
    nodes: list[Annotated[int, Field(ge=0, le=100_000)]] = Field(max_length=4096)
    devices_per_node: int = Field(ge=0, le=64)
    start_ago: Seconds = 0.0
    ends_in: float | None = Field(None, ge=0, le=400 * DAY)  # None: unknown
    what: Text = ""


# ---- frames --------------------------------------------------------------------------------------


class Hello(_Msg):
    """The agent's first frame on every connection: who it is and everything it holds (level state, so a
    server that restarted, or lost events, rebuilds what it knows of the center from it)."""

    t: Literal["hello"] = "hello"
    version: str = Field(max_length=20)
    center: Name
    agent: str = Field(min_length=1, max_length=64)  # this agent installation (its journal) — events' seq space
    runs: list[RunReport] = Field(default_factory=list, max_length=100_000)
    engine_ok: bool = True
    engine_reason: Text = ""


class Events(_Msg):
    t: Literal["events"] = "events"
    items: list[Event] = Field(max_length=MAX_ITEMS)


class Beat(_Msg):
    """Every few seconds: the center's own load and whether its engine answers. The server answers with
    BeatAck(n): the agent's lease runs from when it sent the beat the server acknowledged."""

    t: Literal["beat"] = "beat"
    n: int = Field(ge=1)
    load: list[LoadMsg] | None = Field(None, max_length=100_000)  # None: not read this time
    engine_ok: bool = True
    engine_reason: Text = ""


class Done(_Msg):
    """Commands carried out (and journaled): the server stops resending them."""

    t: Literal["done"] = "done"
    ids: list[int] = Field(max_length=MAX_ITEMS)


class MoveFile(_Msg):
    path: str = Field(min_length=1, max_length=1024)
    size: int = Field(ge=0, le=1 << 50)
    md5: str = Field(pattern=r"^[0-9a-f]{32}$")


MoveState = Literal["running", "done", "failed", "unknown"]


class Moved(_Msg):
    """How a move stands at the agent: `unknown` when it holds no such move (it restarted: ask again)."""

    state: MoveState
    bytes: int = Field(0, ge=0, le=1 << 50)
    error: Text = ""
    files: list[MoveFile] = Field(default_factory=list, max_length=10_000)  # a publish's, once done


class Reply(_Msg):
    t: Literal["reply"] = "reply"
    rid: int = Field(ge=1)
    ok: bool = True
    error: Text = ""
    text: str = Field("", max_length=2 << 20)
    offsets: dict[str, int] = Field(default_factory=dict, max_length=4096)
    moved: Moved | None = None


class Head(_Msg):
    """A tunnelled request's answer begins: its status and headers (the server relays them)."""

    t: Literal["head"] = "head"
    sid: int = Field(ge=1)
    status: int = Field(ge=100, le=599)
    headers: list[Header] = Field(default_factory=list, max_length=128)


class Data(_Msg):
    t: Literal["data"] = "data"
    sid: int = Field(ge=1)
    b64: str = Field(max_length=(CHUNK * 4) // 3 + 8)


class End(_Msg):
    t: Literal["end"] = "end"
    sid: int = Field(ge=1)
    error: Text = ""


AgentFrame = Annotated[Hello | Events | Beat | Done | Reply | Head | Data | End, Field(discriminator="t")]


class Welcome(_Msg):
    t: Literal["welcome"] = "welcome"
    version: str
    acked: int = 0  # events up to this seq are applied: the agent drops them from its journal
    timeout: float  # control.center_timeout: silence after which the server declares the center down
    beat_every: float
    pools: list[dict[str, object]]  # the center's pools as the network file declares them


class Cmds(_Msg):
    t: Literal["cmds"] = "cmds"
    items: list[Command] = Field(max_length=MAX_ITEMS)


class Ack(_Msg):
    t: Literal["ack"] = "ack"
    seq: int = Field(ge=0)


class BeatAck(_Msg):
    t: Literal["beat_ack"] = "beat_ack"
    n: int = Field(ge=1)


class Req(_Msg):
    """A question the server needs answered now (a tenant reads logs): answered by a Reply with `rid`."""

    t: Literal["req"] = "req"
    rid: int = Field(ge=1)
    kind: Literal["logs", "log_delta", "log_rest"]
    handle: Handle
    offsets: dict[str, int] = Field(default_factory=dict, max_length=4096)


class Move(_Msg):
    """A dataset moved between the center's store (the agent's alone to reach) and the server, over HTTP the
    agent opens (`/v1/agent/relay/<transfer>/<path>`): `receive` fetches the files from the server into the
    center's store (and its disk, where its jobs read them), `send` gives them from the center's store to the
    server, `status` asks how one stands, `cancel` stops it, `remove` deletes the dataset from the center,
    `publish` puts the regular files at `path` in run `handle`'s folder into the store under `prefix` (a
    succeeded job's outputs) and answers with their list. Answered at once by a Reply carrying `moved`; a move
    asked twice is carried out once."""

    t: Literal["move"] = "move"
    rid: int = Field(ge=1)
    op: Literal["receive", "send", "status", "cancel", "remove", "publish"]
    transfer: int = Field(ge=0)
    prefix: str = Field(min_length=1, max_length=600)
    files: list[MoveFile] = Field(default_factory=list, max_length=10_000)
    rate: float | None = Field(None, gt=0, le=1e12)  # bytes/s: the link's cap, kept by the agent
    handle: Handle | None = None  # publish: the run whose folder holds the outputs
    path: str | None = Field(None, min_length=1, max_length=4096)  # publish: where in that folder

    @field_validator("prefix")
    @classmethod
    def _clean(cls, v: str) -> str:
        """A key under the center's bucket that never climbs out of the agent's folder when it names one."""
        if any(part in ("", ".", "..") for part in v.split("/")) or any(c in v for c in "\\\x00\n"):
            raise ValueError("a key prefix of clean segments (no empty, '.' or '..' segment, no NUL or backslash)")
        return v


class Refused(_Msg):
    """The server will not go on with this agent (a bad frame, an incompatible version); says why."""

    t: Literal["refused"] = "refused"
    reason: Text
    retry: bool = False  # True: a passing reason (a newer connection took over); else retrying will not help


class Open(_Msg):
    """A request to a run's service, carried to it through the agent (the center opens no port): the agent
    sends it to `port` on the host where run `handle` listens, and nowhere else."""

    t: Literal["open"] = "open"
    sid: int = Field(ge=1)
    handle: Handle
    port: int = Field(ge=1024, le=65535)
    method: Literal["GET", "POST"]
    path: str = Field(min_length=1, max_length=2048, pattern=r"^/[^\s\x00]*$")
    headers: list[Header] = Field(default_factory=list, max_length=64)
    b64: str = Field("", max_length=(2 << 20) * 4 // 3 + 8)


class Credit(_Msg):
    """The server read `n` more bytes of a tunnelled answer: the agent may send that much more."""

    t: Literal["credit"] = "credit"
    sid: int = Field(ge=1)
    n: int = Field(ge=1, le=WINDOW)


class Shut(_Msg):
    """The caller left: the agent drops the request."""

    t: Literal["shut"] = "shut"
    sid: int = Field(ge=1)


ServerFrame = Annotated[Welcome | Cmds | Ack | BeatAck | Req | Refused | Open | Credit | Shut | Move,
                        Field(discriminator="t")]
AGENT_FRAME: TypeAdapter[Hello | Events | Beat | Done | Reply | Head | Data | End] = TypeAdapter(AgentFrame)
SERVER_FRAME: TypeAdapter[Welcome | Cmds | Ack | BeatAck | Req | Refused | Open | Credit | Shut | Move] = (
    TypeAdapter(ServerFrame))
