# The "Callback Methods" example of MicroPython's espnow docs (recv_cb verbatim), with the
# docs' receiver set-up before it and a wait after it so that the program stays up.
import network
import espnow
import time

# A WLAN interface must be active to send()/recv()
sta = network.WLAN(network.STA_IF)
sta.active(True)
sta.disconnect()   # Because ESP8266 auto-connects to last Access Point

e = espnow.ESPNow()
e.active(True)

def recv_cb(e):
    while True:  # Read out all messages waiting in the buffer
        mac, msg = e.irecv(0)  # Don't wait if no messages left
        if mac is None:
            return
        print(mac, msg)

e.irq(recv_cb)

time.sleep(8)  # the callback prints while the program sleeps
