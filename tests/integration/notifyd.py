"""A private D-Bus session bus and a fake desktop notification server, for
the renewal-reminder tests.

SessionBus starts `dbus-daemon --nofork --print-address` with a config of
its own (a socket in a temp dir, nobody else's bus touched). Run as a
script, this file is the notification server: it owns
org.freedesktop.Notifications on the bus given by --address, appends every
Notify call as one JSON line to --record, and offers the test a method
org.ukey.Test.Emit(s signal, u id, s key) that emits ActionInvoked(id, key)
or NotificationClosed(id, 2) as a desktop would. With --portal it also
plays the XDG Desktop Portal (org.freedesktop.portal.Desktop), recording
OpenURI calls as {"open_uri": uri} lines. Needs Debian's
python3-dbus and python3-gi (GLib main loop)."""
import json
import os
import subprocess
import sys
import time

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class SessionBus:
    """A private dbus-daemon; `address` is its DBUS_SESSION_BUS_ADDRESS."""

    def __init__(self, directory):
        from agent import _die_with_parent
        conf = os.path.join(directory, "bus.conf")
        with open(conf, "w") as f:
            f.write(BUS_CONFIG % os.path.join(directory, "bus"))
        self.proc = subprocess.Popen(["dbus-daemon", "--config-file=" + conf, "--nofork", "--print-address"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     text=True, start_new_session=True, preexec_fn=_die_with_parent)
        self.address = self.proc.stdout.readline().strip()
        if not self.address:
            raise RuntimeError("dbus-daemon did not start: " + self.proc.stderr.read())

    def stop(self):
        from agent import terminate
        terminate(self.proc)
        self.proc.stdout.close()
        self.proc.stderr.close()


class NotificationServer:
    """This file run as the fake server on `bus`, recording into `record`."""

    def __init__(self, bus, directory, portal=False):
        from agent import _die_with_parent
        self.record = os.path.join(directory, "notifications.jsonl")
        open(self.record, "w").close()
        ready = os.path.join(directory, "notifyd.ready")
        self.proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--address", bus.address,
                                      "--record", self.record, "--ready", ready] + (["--portal"] if portal else []),
                                     stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=_die_with_parent)
        deadline = time.monotonic() + 20
        while not os.path.exists(ready):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the fake notification server did not start")
            time.sleep(0.05)
        self.bus = bus

    def records(self):
        with open(self.record) as f:
            return [json.loads(line) for line in f if line.strip()]

    def calls(self):
        """The Notify calls so far."""
        return [r for r in self.records() if "open_uri" not in r]

    def opened(self):
        """The URIs given to the portal's OpenURI so far."""
        return [r["open_uri"] for r in self.records() if "open_uri" in r]

    def emit(self, signal, nid, key=""):
        """Has the server emit ActionInvoked(nid, key) or NotificationClosed(nid, 2)."""
        import dbus
        conn = dbus.bus.BusConnection(self.bus.address)
        try:
            conn.get_object("org.freedesktop.Notifications", "/org/freedesktop/Notifications").Emit(
                signal, dbus.UInt32(nid), key, dbus_interface="org.ukey.Test")
        finally:
            conn.close()

    def stop(self):
        from agent import terminate
        terminate(self.proc)


def serve(address, record, ready, portal):
    import dbus
    import dbus.service
    from dbus.mainloop.glib import DBusGMainLoop
    from gi.repository import GLib

    DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(address)
    name = dbus.service.BusName("org.freedesktop.Notifications", bus)

    class Server(dbus.service.Object):
        next_id = 1

        @dbus.service.method("org.freedesktop.Notifications", in_signature="susssasa{sv}i", out_signature="u")
        def Notify(self, app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout):
            nid = Server.next_id
            Server.next_id += 1
            with open(record, "a") as f:
                f.write(json.dumps({"id": nid, "app_name": str(app_name), "replaces_id": int(replaces_id),
                                    "app_icon": str(app_icon), "summary": str(summary), "body": str(body),
                                    "actions": [str(a) for a in actions],
                                    "hints": {str(k): (int(v) if isinstance(v, (dbus.Byte, int)) else str(v))
                                              for k, v in hints.items()},
                                    "expire_timeout": int(expire_timeout)}, ensure_ascii=False) + "\n")
            return nid

        @dbus.service.method("org.freedesktop.Notifications", in_signature="", out_signature="as")
        def GetCapabilities(self):
            return ["body", "actions"]

        @dbus.service.method("org.freedesktop.Notifications", in_signature="", out_signature="ssss")
        def GetServerInformation(self):
            return ("ukey-test", "ukey-agent tests", "1", "1.2")

        @dbus.service.method("org.freedesktop.Notifications", in_signature="u", out_signature="")
        def CloseNotification(self, nid):
            self.NotificationClosed(nid, dbus.UInt32(3))

        @dbus.service.signal("org.freedesktop.Notifications", signature="us")
        def ActionInvoked(self, nid, key):
            pass

        @dbus.service.signal("org.freedesktop.Notifications", signature="uu")
        def NotificationClosed(self, nid, reason):
            pass

        @dbus.service.method("org.ukey.Test", in_signature="sus", out_signature="")
        def Emit(self, signal, nid, key):
            if signal == "ActionInvoked":
                self.ActionInvoked(nid, key)
            else:
                self.NotificationClosed(nid, dbus.UInt32(2))

    class Portal(dbus.service.Object):
        @dbus.service.method("org.freedesktop.portal.OpenURI", in_signature="ssa{sv}", out_signature="o")
        def OpenURI(self, parent_window, uri, options):
            with open(record, "a") as f:
                f.write(json.dumps({"open_uri": str(uri)}) + "\n")
            return dbus.ObjectPath("/org/freedesktop/portal/desktop/request/1/ukey")

    server = Server(bus, "/org/freedesktop/Notifications")
    if portal:
        server.portal_name = dbus.service.BusName("org.freedesktop.portal.Desktop", bus)
        server.portal = Portal(bus, "/org/freedesktop/portal/desktop")
    open(ready, "w").close()
    GLib.MainLoop().run()
    return server, name  # (never reached) both must live while the loop runs


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--record", required=True)
    parser.add_argument("--ready", required=True)
    parser.add_argument("--portal", action="store_true")
    a = parser.parse_args()
    serve(a.address, a.record, a.ready, a.portal)
