"""Never returns: the run must time out and be killed."""


def run():
    while True:
        pass
