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
