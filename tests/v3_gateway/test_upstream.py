"""ModelClient on its own: what it forwards, and what counts against its circuit."""

from __future__ import annotations

import threading

import pytest

from tests.support.servers import free_port
from v3_gateway.breaker import CLOSED
from v3_gateway.routes import ModelRoute
from v3_gateway.settings import GatewaySettings
from v3_gateway.transport import HandlePerThread
from v3_gateway.upstream import Deadline, ModelClient
from webservice import errors


@pytest.fixture
def client(hanging_service):
    settings = GatewaySettings(
        model_services=f"resnet18={hanging_service.url}",
        max_in_flight_per_model=1,
        queue_wait_seconds=30,
        breaker_fail_max=1,
    )
    return ModelClient(ModelRoute("resnet18", hanging_service.url), settings, HandlePerThread())


def test_a_request_whose_client_left_while_it_waited_for_a_slot_is_not_sent(
    client, hanging_service
):
    client.slots.acquire()  # another request holds the model's only slot
    gone = threading.Event()
    outcome: list[BaseException] = []

    def waiting_request() -> None:
        try:
            client.predict(b"{}", "application/json", Deadline(60), client_gone=gone.is_set)
        except errors.ApiError as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=waiting_request)
    waiter.start()
    gone.set()  # its client hangs up...
    client.slots.release()  # ...before (or while) it gets the slot
    waiter.join(30)

    [refused] = outcome
    assert isinstance(refused, errors.ClientGone)
    assert "waiting for a slot" in refused.message
    assert hanging_service.connections == 0  # nothing reached the model
    assert client.breaker.state == CLOSED  # and nothing counted against it


def test_a_full_bulkhead_is_a_failure_of_the_model(client):
    client.slots.acquire()
    quick = client.settings.model_copy(update={"queue_wait_seconds": 0.05})
    client.settings = quick
    with pytest.raises(errors.ModelBusy):
        client.predict(b"{}", "application/json", Deadline(60))
    with pytest.raises(errors.ModelUnavailable) as refused:  # fail_max=1: open now
        client.predict(b"{}", "application/json", Deadline(60))
    assert refused.value.details["circuit"] == "open"
    client.slots.release()


def test_a_failed_call_frees_its_slot():
    """A refused connection (nothing listens) gives its slot back at once."""
    url = f"http://127.0.0.1:{free_port()}"
    settings = GatewaySettings(
        model_services=f"resnet18={url}", max_in_flight_per_model=1, breaker_fail_max=5
    )
    client = ModelClient(ModelRoute("resnet18", url), settings, HandlePerThread())
    for _ in range(2):
        with pytest.raises(errors.ModelUnavailable):
            client.predict(b"{}", "application/json", Deadline(60))
    assert client.slots.acquire(timeout=0)
