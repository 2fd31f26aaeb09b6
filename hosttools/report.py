"""`roam report DIR`: an HTML report of a field test (a simulator run directory; later also the
logs collected from boards).

Reading and plotting are separate: ``read_run(dir)`` turns events.jsonl (docs/EVENTS.md) and
summary.json into a ``RunData`` of plain series; ``render(data)`` draws it. A board-log reader
only has to produce the same ``RunData``. Plots are inline SVG (matplotlib, Agg backend) so the
page works offline as one file.
"""

import html
import io
import json
import os


class _Pyplot:
    """matplotlib.pyplot (Agg backend), imported on first use: every `roam` command imports
    this module, and only the report draws (matplotlib takes a quarter of a second to load)."""

    _mod = None

    def __getattr__(self, name):
        if _Pyplot._mod is None:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot

            _Pyplot._mod = matplotlib.pyplot
        return getattr(_Pyplot._mod, name)


plt = _Pyplot()


class ReportError(ValueError):
    pass


class RunData:
    def __init__(self):
        self.summary = {}
        self.names = {}  # address -> node id (from sim_power/binding events where known)
        self.serving = {}  # mobile id -> [(t_s, agent address or None)]
        self.handoffs = {}  # mobile id -> [t_s]
        self.rssi = {}  # mobile id -> {agent: [(t_s, dBm)]}
        self.load = {}  # agent id -> [(t_s, bindings)]
        self.sent = {}  # flow -> [t_s]
        self.delivered = {}  # flow -> [(t_s, seq)]
        self.sent_at = {}  # (flow, seq) -> t_s it was sent
        self.flow_ends = {}  # flow -> (src, dst)
        self.crashes = []  # (t_s, board, error, where): a board's crash lines
        self.end_s = 0.0


def read_events(lines, warn=None):
    """Parse events.jsonl lines into dicts. A malformed line (cut off: a run killed while it
    wrote) is skipped and told to ``warn`` with its number; without ``warn`` it raises
    ReportError."""
    out = []
    bad = 0
    for i, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        try:
            e = json.loads(line)
            why = None if isinstance(e, dict) and "t" in e and "event" in e else "lacks t/event"
        except ValueError:
            why = "is not JSON"
        if why is not None:
            what = "events line %d %s: %.40s" % (i, why, line)
            if warn is None:
                raise ReportError(what)
            bad += 1
            if bad <= 5:
                warn(what + ": skipped")
            continue
        out.append(e)
    if warn is not None and bad > 5:
        warn("%d more bad events lines skipped" % (bad - 5))
    return out


def collect(events, summary=None, names=None):
    """RunData from parsed events (the same for a simulator run and board logs). ``names``:
    a board's name for its address or node id (a log directory's logs.json), so that a lab or
    field report names nodes and agents as the fleet does, as the simulator's does."""
    d = RunData()
    d.summary = summary or {}
    names = names or {}

    def named(v):
        if v is None:
            return None
        return names.get(v, names.get(str(v), v))

    serving = {}
    for e in events:
        t = e["t"] / 1000.0
        d.end_s = max(d.end_s, t)
        name = e["event"]
        node = named(e.get("node"))
        if name == "bound" and node is not None:
            agent = named(e.get("agent"))
            if serving.get(node) != agent:
                serving[node] = agent
                d.serving.setdefault(node, []).append((t, agent))
        elif name == "handoff" and node is not None:
            d.handoffs.setdefault(node, []).append(t)
        elif name in ("unbound", "mode") and node is not None:
            if name == "unbound" and e.get("reason") == "handoff":
                continue
            if name == "mode" and e.get("mode") == "agent":
                continue
            if serving.get(node) is not None:
                serving[node] = None
                d.serving.setdefault(node, []).append((t, None))
        elif name == "sim_rssi" and node is not None:
            agent = named(e.get("agent"))
            d.rssi.setdefault(node, {}).setdefault(agent, []).append((t, e.get("rssi")))
        elif name == "rssi" and node is not None and isinstance(e.get("agents"), dict):
            # a board's own view: the smoothed signal of every agent it hears
            for agent, dbm in e["agents"].items():
                d.rssi.setdefault(node, {}).setdefault(named(agent), []).append((t, dbm))
        elif name in ("binding_up", "binding_down") and node is not None and "load" in e:
            d.load.setdefault(node, []).append((t, e["load"]))
        elif name == "app_send":
            d.sent.setdefault(e["flow"], []).append(t)
            d.flow_ends[e["flow"]] = (node, named(e.get("dst")))
            if e.get("seq") is not None:
                d.sent_at[(e["flow"], e["seq"])] = t
        elif name == "app_deliver":
            d.delivered.setdefault(e["flow"], []).append((t, e.get("seq")))
        elif name == "crash":
            d.crashes.append((t, node, e.get("error"), e.get("at")))
    if d.summary.get("sim_s"):
        d.end_s = max(d.end_s, float(d.summary["sim_s"]))
    return d


def read_run(run_dir, warn=None):
    if not os.path.isdir(run_dir):
        raise ReportError("no directory %s" % run_dir)
    ev = os.path.join(run_dir, "events.jsonl")
    if not os.path.exists(ev):
        raise ReportError(
            "%s is not a run directory (no events.jsonl of `roam sim`, no logs.json of "
            "`roam logs` or `roam field`)" % run_dir
        )
    summary = {}
    sp = os.path.join(run_dir, "summary.json")
    if os.path.exists(sp):
        with open(sp) as f:
            summary = json.load(f)
    with open(ev, errors="replace") as f:
        events = read_events(f, warn)
    names = {}
    try:  # a log directory (roam logs, roam field): its boards by address and node id
        with open(os.path.join(run_dir, "logs.json")) as f:
            boards = json.load(f).get("boards", {})
        for board, info in boards.items():
            if isinstance(info, dict):
                for k in ("addr", "node"):
                    if info.get(k) is not None:
                        names[info[k]] = board
                        names[str(info[k])] = board
    except (OSError, ValueError, AttributeError):
        pass
    if not events and warn is not None:
        warn(
            "%s holds no events: the report is empty (did the boards run? a lab's boards wait "
            "for `roam lab start`)" % run_dir
        )
    return collect(events, summary, names)


def _svg(fig):
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    s = buf.getvalue()
    return s[s.index("<svg") :]


def _timeline(fig, ax, title, ylabel, ncol):
    """A plot over the run's time, finished: its labels, title and legend; as SVG."""
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.set_xlabel("time (s)")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        # beside the plot, not over the data
        ax.legend(fontsize="small", ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _svg(fig)


def agent_colours(d):
    """One colour per agent, the same in every plot (by the agents' sorted names)."""
    agents = set(d.load)
    for pts in d.serving.values():
        agents |= {a for _, a in pts if a is not None}
    for heard in d.rssi.values():
        agents |= set(heard)
    palette = [
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
        "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
        "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
    ]  # fmt: skip
    return {a: palette[i % len(palette)] for i, a in enumerate(sorted(agents, key=str))}


def _serving_plot(d, nodes):
    agents = sorted({a for n in nodes for _, a in d.serving.get(n, []) if a is not None})
    ypos = {a: i for i, a in enumerate(agents)}
    fig, ax = plt.subplots(figsize=(9, 0.6 + 0.5 * max(2, len(agents))))
    for n in nodes:
        pts = d.serving.get(n, [])
        xs, ys = [], []
        for i, (t, a) in enumerate(pts):
            t1 = pts[i + 1][0] if i + 1 < len(pts) else d.end_s
            y = ypos.get(a, -1) if a is not None else -1
            xs += [t, t1]
            ys += [y, y]
        ax.plot(xs, ys, drawstyle="steps-post", label=n)
        for h in d.handoffs.get(n, []):
            ax.axvline(h, alpha=0.15, color="grey")
    ax.set_yticks([-1] + list(range(len(agents))))
    ax.set_yticklabels(["(none)"] + agents)
    return _timeline(fig, ax, "serving agent per mobile node (grey: hand-offs)", None, 4)


def _rssi_plot(d, node, colours):
    fig, ax = plt.subplots(figsize=(9, 2.6))
    for agent, pts in sorted(d.rssi.get(node, {}).items(), key=lambda kv: str(kv[0])):
        ax.plot(
            [p[0] for p in pts],
            [p[1] for p in pts],
            ".",
            markersize=2,
            label=agent,
            color=colours.get(agent),
        )
    for h in d.handoffs.get(node, []):
        ax.axvline(h, alpha=0.3, color="grey")
    title = "%s: RSSI of the agents heard (grey: hand-offs)" % node
    return _timeline(fig, ax, title, "RSSI (dBm)", 4)


def _delivery_plot(d):
    fig, ax = plt.subplots(figsize=(9, 2.8))
    bins = max(1, int(d.end_s))
    for f in sorted(d.sent):
        sent = [0] * (bins + 1)
        got = [0] * (bins + 1)
        for t in d.sent[f]:
            sent[min(bins, int(t))] += 1
        for t, seq in d.delivered.get(f, []):
            # counted in the second it was sent, so a datagram in flight across a second's
            # boundary does not show as a dip
            t = d.sent_at.get((f, seq), t)
            got[min(bins, int(t))] += 1
        xs = [i for i in range(bins + 1) if sent[i]]
        ys = [min(1.0, got[i] / sent[i]) for i in xs]
        src, dst = d.flow_ends.get(f, ("?", "?"))
        ax.plot(xs, ys, label="flow %s %s->%s" % (f, src, dst), linewidth=1)
    ax.set_ylim(-0.05, 1.05)
    return _timeline(fig, ax, "delivery per flow", "delivered / sent (per s)", 3)


def _gap_plot(d):
    gaps = []
    for pts in d.delivered.values():
        ts = sorted(t for t, _ in pts)
        gaps += [(b - a) * 1000.0 for a, b in zip(ts, ts[1:], strict=False)]
    fig, ax = plt.subplots(figsize=(9, 2.4))
    if gaps:
        ax.hist(gaps, bins=60, log=True)
    ax.set_xlabel("gap between consecutive deliveries of a flow (ms)")
    ax.set_ylabel("gaps (log scale)")
    ax.set_title("interruptions")
    return _svg(fig)


MAX_MOBILES = 12  # plots of mobile nodes in a report
MAX_AGENTS = 20  # agents in the load plot


def _load_plot(d, colours):
    fig, ax = plt.subplots(figsize=(9, 2.6))
    for a in sorted(d.load, key=str)[:MAX_AGENTS]:
        pts = d.load[a]
        ax.plot(
            [p[0] for p in pts] + [d.end_s],
            [p[1] for p in pts] + [pts[-1][1]],
            drawstyle="steps-post",
            label=a,
            color=colours.get(a),
        )
    return _timeline(fig, ax, "bindings (load) per agent", "local bindings", 5)


def _shown(v):
    """A figure as a reader wants it: floats to 4 significant digits, None as a dash."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.4g" % v
    return str(v)


# The summary's figures as a reader names them, in reading order; a run of boards (lab, field)
# leaves out what only the simulator counts (frames on the air, attacks: None there).
SUMMARY_ROWS = (
    ("scenario", "scenario"),
    ("delivery_ratio", "delivery ratio"),
    ("sent", "datagrams sent"),
    ("delivered", "delivered"),
    ("in_flight", "in flight at the end"),
    ("duplicates", "duplicates"),
    ("handoffs", "hand-offs"),
    ("interruption_ms", "interruption (ms)"),
    ("lost_in_handoff", "lost in hand-offs"),
    ("undelivered", "never delivered"),
    ("lost_by_cause", "never delivered, by cause"),
    ("binding_changes", "binding changes"),
    ("publications", "publications"),
    ("publications_per_binding_change", "publications per binding change"),
    ("convergence_ms", "convergence (ms)"),
    ("control_frames", "control frames"),
    ("control_bytes", "control bytes"),
    ("forged_sent", "forged messages sent"),
    ("forged_accepted", "forged accepted"),
    ("replayed_sent", "replayed messages sent"),
    ("replayed_accepted", "replayed accepted"),
    ("boards", "boards"),
    ("sim_s", "length of the run (s)"),
    ("wall_s", "wall-clock time (s)"),
    ("machine_ref_ms", "the machine's reference loop (ms)"),
)
SIM_ONLY = frozenset(
    (
        "control_frames",
        "control_bytes",
        "forged_sent",
        "forged_accepted",
        "replayed_sent",
        "replayed_accepted",
        "wall_s",  # the same as sim_s for a run of boards
        "convergence_ms",  # the boards do not log what it needs
    )
)


def summary_rows(s):
    """(label, shown value) of the summary: known figures by their names, in reading order,
    then anything else under its key; a run of boards leaves out the simulator's own."""
    boards = s.get("source") == "logs"
    out = []
    labels = dict(SUMMARY_ROWS)
    keys = [k for k, _ in SUMMARY_ROWS if k in s]
    keys += sorted(k for k in s if k not in labels and k not in ("source", "nodes"))
    for k in keys:
        v = s[k]
        if boards and (k in SIM_ONLY or v is None):
            continue
        if isinstance(v, dict):
            v = ", ".join("%s %s" % (a, _shown(b)) for a, b in v.items())
        else:
            v = _shown(v)
        out.append((labels.get(k, k), v))
    return out


def _crash_table(d):
    """Every crash a board logged: when, which board, the error and where it was raised (the
    crash line's ``at``: its innermost frames), so a report says what to look at."""
    rows = [
        "<tr><td>%.1f</td><td>%s</td><td>%s</td><td>%s</td></tr>"
        % (t, html.escape(str(board)), html.escape(str(error)), html.escape(str(at or "")))
        for t, board, error, at in d.crashes
    ]
    return (
        "<table><tr><th>time (s)</th><th>board</th><th>error</th><th>where</th></tr>%s</table>"
        % "".join(rows)
    )


def render(d, title="roam field test"):
    rows = [
        "<tr><th>%s</th><td>%s</td></tr>" % (html.escape(label), html.escape(str(v)))
        for label, v in summary_rows(d.summary)
    ]
    colours = agent_colours(d)
    mobiles = sorted(set(d.serving) | set(d.rssi), key=str)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>%s</title>" % html.escape(title),
        "<style>body{font-family:sans-serif;max-width:1000px;margin:auto}"
        "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 6px;"
        "text-align:left;font-size:small}</style></head><body>",
        "<h1>%s</h1>" % html.escape(title),
        "<h2>Summary</h2><table>%s</table>" % "".join(rows),
    ]
    shown = mobiles[:MAX_MOBILES]
    if shown:
        parts.append("<h2>Mobile nodes</h2>")
        if len(mobiles) > len(shown):
            parts.append(
                "<p>The first %d of %d mobile nodes (by name); the summary counts them all.</p>"
                % (len(shown), len(mobiles))
            )
        parts.append(_serving_plot(d, shown))
        for n in shown:
            if n in d.rssi:
                parts.append(_rssi_plot(d, n, colours))
    if d.sent:
        parts.append("<h2>Delivery and interruption</h2>")
        parts.append(_delivery_plot(d))
        parts.append(_gap_plot(d))
    if d.crashes:
        parts.append("<h2>Crashes</h2>")
        parts.append(_crash_table(d))
    if d.load:
        parts.append("<h2>Agents</h2>")
        if len(d.load) > MAX_AGENTS:
            parts.append("<p>The first %d of %d agents (by name).</p>" % (MAX_AGENTS, len(d.load)))
        parts.append(_load_plot(d, colours))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dir, out=None, warn=None):
    d = read_run(run_dir, warn)
    title = "roam field test: %s" % d.summary.get("scenario", os.path.basename(run_dir))
    page = render(d, title)
    out = out or os.path.join(run_dir, "report.html")
    tmp = out + ".tmp"
    try:
        with open(tmp, "w") as f:
            f.write(page)
        os.replace(tmp, out)
    except OSError as e:  # the user's path, not the temporary file's
        raise ReportError("cannot write %s: %s" % (out, e.strerror)) from None
    return out


def _cli():
    import click

    from hosttools.errors import RoamError

    @click.command(name="report")
    @click.argument("run_dir", type=click.Path(file_okay=False))
    @click.option(
        "--out",
        type=click.Path(dir_okay=False),
        default=None,
        help="HTML file to write (default RUN_DIR/report.html).",
    )
    def report(run_dir, out):
        """Write an HTML report (plots inline, works offline) for a run directory.

        A line that is cut off (not JSON) is skipped with a warning naming it; a run with no
        events gives an empty report, and a warning."""

        def warn(msg):
            click.echo("roam: warning: " + " ".join(msg.split()), err=True)

        try:
            from hosttools import timeline  # a `roam logs` directory: merge it first

            if not os.path.isdir(run_dir):
                raise ReportError("no directory %s" % run_dir)
            if timeline.is_log_dir(run_dir):
                timeline.write_run(run_dir, workers=2, warn=warn)
            path = write_report(run_dir, out, warn)
        except ReportError as e:
            raise RoamError("report: %s" % e) from None
        except (OSError, ValueError) as e:
            raise RoamError("report %s: %s" % (run_dir, e)) from None
        click.echo("wrote %s" % path)

    return report


report_command = _cli()
