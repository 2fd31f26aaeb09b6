# Virtual-board copy of the `aioespnow` module MicroPython ships (frozen) for the ESP32:
# asyncio support for ESP-NOW. The ESPNow object is a pollable stream, so the asyncio IO
# queue can wait for it to become readable, exactly as on the board.

import asyncio

import espnow


class AIOESPNow(espnow.ESPNow):
    # Read one ESPNow message
    async def arecv(self):
        yield asyncio.core._io_queue.queue_read(self)
        return self.recv(0)

    async def airecv(self):
        yield asyncio.core._io_queue.queue_read(self)
        return self.irecv(0)

    async def asend(self, mac, msg=None, sync=None):
        if msg is None:
            msg, mac = mac, None  # If msg is None: swap mac and msg
        yield asyncio.core._io_queue.queue_write(self)
        return self.send(mac, msg, sync)

    # "async for" support
    def __aiter__(self):
        return self

    async def __anext__(self):
        return await self.airecv()
