"""The runner's guard against nbclient#312: an ``interact`` cell must not hang a chapter run."""
from __future__ import annotations

from types import SimpleNamespace

from nbclient.output_widget import OutputWidget

from robustbook.run import quiet_output_widgets


class Shell:
    def __init__(self) -> None:
        self.sent: list = []

    def send(self, msg) -> None:
        self.sent.append(msg)


def output_once() -> tuple[Shell, dict]:
    shell = Shell()
    client = SimpleNamespace(shell_channel=shell, session=SimpleNamespace(msg=lambda *a, **k: {"a": a, "k": k}))
    executor = SimpleNamespace(widget_state={"c1": {"outputs": []}})
    widget = OutputWidget("c1", {"outputs": []}, client, executor)
    msg = {"parent_header": {}, "header": {"msg_type": "stream"}, "msg_type": "stream",
           "content": {"name": "stdout", "text": "hello"}}
    widget.output([], msg, None, 0)
    return shell, executor.widget_state


def test_output_widgets_keep_their_outputs_without_writing_to_the_shell_channel(monkeypatch):
    monkeypatch.setattr(OutputWidget, "sync_state", OutputWidget.sync_state)   # restored after the test
    shell, _ = output_once()
    assert len(shell.sent) == 1             # nbclient as shipped: the echo that races the cell's reply
    quiet_output_widgets()
    shell, state = output_once()
    assert shell.sent == []                 # no echo on the shell socket while a cell's reply is awaited
    assert state["c1"]["outputs"][0]["text"] == "hello"   # the page's widget state keeps the output
