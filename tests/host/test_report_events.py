"""What the report reads from events: the same for a simulator run and for board logs."""

from hosttools import report


def test_board_rssi_events_feed_the_signal_plot_and_figures_read_well():
    events = [
        {"t": 1000, "event": "bound", "node": "m1", "agent": "10.0.0.1"},
        {
            "t": 2000,
            "event": "rssi",
            "node": "m1",
            "serving": "10.0.0.1",
            "agents": {"10.0.0.1": -61, "10.0.0.2": -80},
        },
        {
            "t": 3000,
            "event": "rssi",
            "node": "m1",
            "serving": "10.0.0.1",
            "agents": {"10.0.0.1": -66, "10.0.0.2": -72},
        },
    ]
    d = report.collect(events, {"delivery_ratio": 0.99876543, "forged_accepted": None})
    assert d.rssi["m1"] == {
        "10.0.0.1": [(2.0, -61), (3.0, -66)],
        "10.0.0.2": [(2.0, -80), (3.0, -72)],
    }
    page = report.render(d)
    assert "RSSI of the agents heard" in page
    assert "0.9988" in page and "0.99876543" not in page


def test_a_datagram_is_counted_in_the_second_it_was_sent():
    events = [
        {"t": 1990, "event": "app_send", "node": "c1", "flow": "f", "seq": 1, "dst": "m1"},
        {"t": 2010, "event": "app_deliver", "node": "m1", "flow": "f", "seq": 1},
    ]
    d = report.collect(events)
    assert d.sent_at[("f", 1)] == 1.99
    assert "delivery per flow" in report.render(d)


def test_a_lab_report_names_boards_as_the_fleet_does(tmp_path):
    """Issue 18 item 14: a report of board logs names mobile nodes and agents by their board
    names (not node ids and addresses), the same colour for an agent in every plot, legends
    beside the plots, the histogram's y axis labelled, the summary in words without the
    simulator's own figures, and says when it shows only some of the nodes."""
    import json
    import re

    boards = {"a%d" % i: {"node": i, "addr": "10.0.0.%d" % i, "role": "agent"} for i in (1, 2)}
    for k in range(14):
        boards["m%d" % k] = {"node": 20 + k, "addr": "10.64.0.%d" % (20 + k), "role": "mobile"}
    (tmp_path / "logs.json").write_text(json.dumps({"kind": "roam-logs", "boards": boards}))
    events = []
    for k in range(14):
        events.append({"t": 1000 + k, "event": "bound", "node": 20 + k, "agent": "10.0.0.1"})
        events.append(
            {
                "t": 2000,
                "event": "rssi",
                "node": 20 + k,
                # m5 hears a2 only: a2 keeps its colour in m5's plot all the same
                "agents": {"10.0.0.2": -70} if k == 5 else {"10.0.0.1": -60, "10.0.0.2": -70},
            }
        )
    events += [
        {"t": 1500, "event": "binding_up", "node": 1, "home": "10.64.0.20", "load": 1},
        {"t": 1600, "event": "binding_up", "node": 2, "home": "10.64.0.21", "load": 1},
        {"t": 1990, "event": "app_send", "node": 7, "flow": "f", "seq": 1, "dst": "10.64.0.20"},
        {"t": 2010, "event": "app_deliver", "node": 20, "flow": "f", "seq": 1},
        {"t": 2990, "event": "app_send", "node": 7, "flow": "f", "seq": 2, "dst": "10.64.0.20"},
        {"t": 3010, "event": "app_deliver", "node": 20, "flow": "f", "seq": 2},
    ]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    summary = {"source": "logs", "delivery_ratio": 1.0, "handoffs": 0, "forged_sent": None}
    summary.update(control_frames=None, sim_s=3.0, wall_s=3.0, convergence_ms={"median": None})
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    d = report.read_run(str(tmp_path))
    assert sorted(d.serving) == sorted("m%d" % k for k in range(14))
    assert d.serving["m0"] == [(1.0, "a1")] and set(d.rssi["m3"]) == {"a1", "a2"}
    assert set(d.load) == {"a1", "a2"} and d.flow_ends["f"][1] == "m0"
    page = report.render(d)
    assert "The first 12 of 14 mobile nodes" in page
    assert "gaps (log scale)" in page
    # a1 and a2 drawn in the same two colours in the signal plots and the load plot
    colours = report.agent_colours(d)
    assert colours["a1"] != colours["a2"]
    for c in colours.values():
        assert page.count(c) >= 3, c
    m5 = report._rssi_plot(d, "m5", colours)
    assert colours["a2"] in m5 and colours["a1"] not in m5
    table = re.search(r"<h2>Summary</h2><table>(.*?)</table>", page).group(1)
    assert "<th>delivery ratio</th><td>1</td>" in table and "<th>hand-offs</th>" in table
    assert "<th>length of the run (s)</th><td>3</td>" in table
    for gone in ("forged", "control", "wall", "convergence", "sim_s"):
        assert gone not in table, gone


def test_a_boards_crashes_are_listed_with_where_they_were_raised():
    at = "mobility.advert:__init__ < mobility.cell:_advertise"
    events = [
        {"t": 1000, "event": "start", "node": "a2", "role": "agent"},
        {"t": 7300, "event": "crash", "node": "a2", "error": "MemoryError('<x>')", "at": at},
        {"t": 9000, "event": "crash", "node": "a3", "error": "OSError(5,)", "at": None},
    ]
    d = report.collect(events)
    assert d.crashes == [(7.3, "a2", "MemoryError('<x>')", at), (9.0, "a3", "OSError(5,)", None)]
    page = report.render(d)
    assert "<h2>Crashes</h2>" in page
    assert (
        "<td>7.3</td><td>a2</td><td>MemoryError(&#x27;&lt;x&gt;&#x27;)</td><td>%s</td>"
        % (at.replace("<", "&lt;"))
        in page
    )
    assert "<h2>Crashes</h2>" not in report.render(report.collect(events[:1]))
