# A stand-in for a board's `socket` module (C on a board, so none of its code is heap) for the
# heap benchmarks (bench/field_memory.py), which run where no network is: UDP that goes nowhere.
AF_INET = 2
SOCK_DGRAM = 2


def getaddrinfo(host, port, *args):
    return [(AF_INET, SOCK_DGRAM, 0, "", (host, port))]


class socket:
    def __init__(self, *args):
        pass

    def bind(self, addr):
        pass

    def setblocking(self, flag):
        pass

    def sendto(self, data, addr):
        return len(data)

    def close(self):
        pass
