"""``EvseSimulator``: an ``EvseDriver`` without hardware, for development, tests and demos.

Rules of this module:

- It behaves like a DC (or AC) EVSE with an ideal power stage: the output follows the
  target within the limits, but only while the contactors are closed; energy is the
  integral of power over the clock passed in (``clock``: monotonic seconds), so tests can
  advance time without sleeping.
- Tests and the service drive the EV side with ``plug_in``, ``ev_ready``, ``unplug``,
  ``inject_fault`` and ``set_isolation``.
- Signed meter values are real ECDSA (P-256) signatures over a JSON reading, made with a
  key generated per simulator; the public key comes with each value.
- Bidirectional (``BidirectionalEvseDriver``): with ``limits.max_discharge_power_w`` > 0 and
  an EV battery (``plug_in(battery=EvBattery(...))``) a negative setpoint discharges the
  battery: power is the setpoint clamped to the EVSE's and the battery's limits both ways
  and to its state of charge (nothing flows out of an empty battery or into a full one);
  export energy is counted on its own register.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import AsyncIterator, Callable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pnc_bridge.evse._driver import (
    CpState,
    EvseFault,
    EvseLimits,
    IsolationResult,
    Measurement,
    MeterReading,
    SignedMeterValue,
)

__all__ = ["EvseSimulator", "EvBattery"]


@dataclass
class EvBattery:
    """The simulated EV's traction battery: capacity, state of charge and power limits both ways."""

    capacity_wh: float
    soc: float  # percent, 0..100
    max_charge_power_w: float
    max_discharge_power_w: float = 0.0

    @property
    def energy_wh(self) -> float:
        return self.capacity_wh * self.soc / 100.0

    def add_energy(self, wh: float) -> None:
        """Energy into (positive) or out of (negative) the battery; the SoC stays in 0..100."""
        if self.capacity_wh > 0:
            self.soc = min(100.0, max(0.0, self.soc + 100.0 * wh / self.capacity_wh))


class _StateStream:
    def __init__(self, listeners: list[asyncio.Queue[CpState]]) -> None:
        self._queue: asyncio.Queue[CpState] = asyncio.Queue()
        self._listeners = listeners
        listeners.append(self._queue)

    def __aiter__(self) -> "_StateStream":
        return self

    async def __anext__(self) -> CpState:
        return await self._queue.get()

    def close(self) -> None:
        if self._queue in self._listeners:
            self._listeners.remove(self._queue)


class EvseSimulator:
    """A simulated EVSE implementing ``EvseDriver``."""

    def __init__(
        self,
        evse_id: int,
        *,
        limits: EvseLimits | None = None,
        ac: bool = False,
        nominal_voltage_v: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._evse_id = evse_id
        self._limits = limits or EvseLimits(max_current_a=200.0, max_power_w=150_000.0, max_voltage_v=920.0, min_voltage_v=150.0)
        self.ac = ac
        self._nominal = nominal_voltage_v or (230.0 if ac else 400.0)
        self._clock = clock
        self._wall_clock = wall_clock
        self._cp = CpState.A
        self._listeners: list[asyncio.Queue[CpState]] = []
        self.contactors_closed = False
        self.contactor_welded = False
        self._isolation = IsolationResult.Valid
        self._target = (0.0, 0.0)
        self._limit_current: float | None = None
        self._limit_power: float | None = None
        self._limit_discharge_current: float | None = None
        self._limit_discharge_power: float | None = None
        self._setpoint_w: float | None = None
        self.battery: EvBattery | None = None
        self._energy_wh = 0.0
        self._export_wh = 0.0
        self._last_integration = clock()
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._public_key = base64.b64encode(
            self._key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        ).decode()

    # ------------------------------------------------------------------ EvseDriver
    @property
    def evse_id(self) -> int:
        return self._evse_id

    def cp_state(self) -> CpState:
        return self._cp

    def cp_state_changes(self) -> AsyncIterator[CpState]:
        # Registered now, not at the first __anext__: no change between the call and the
        # first await is lost.
        return _StateStream(self._listeners)

    async def set_contactors(self, closed: bool) -> None:
        self._integrate()
        if not closed and self.contactor_welded:
            raise EvseFault(f"EVSE {self._evse_id}: contactor welded, cannot open")
        if closed and self._cp not in (CpState.C, CpState.D):
            raise EvseFault(f"EVSE {self._evse_id}: EV not ready (CP state {self._cp.value})")
        self.contactors_closed = closed

    async def isolation_check(self, voltage_v: float) -> IsolationResult:
        if voltage_v > self._limits.max_voltage_v:
            return IsolationResult.Fault
        return self._isolation

    def limits(self) -> EvseLimits:
        current = self._limits.max_current_a
        power = self._limits.max_power_w
        if self._limit_current is not None:
            current = min(current, self._limit_current)
        if self._limit_power is not None:
            power = min(power, self._limit_power)
        discharge_current = self._limits.max_discharge_current_a or (
            self._limits.max_discharge_power_w / self._nominal if self._limits.max_discharge_power_w else 0.0
        )
        discharge_power = self._limits.max_discharge_power_w
        if self._limit_discharge_current is not None:
            discharge_current = min(discharge_current, self._limit_discharge_current)
        if self._limit_discharge_power is not None:
            discharge_power = min(discharge_power, self._limit_discharge_power)
        return EvseLimits(
            max(0.0, current), max(0.0, power), self._limits.max_voltage_v, self._limits.min_current_a,
            self._limits.min_voltage_v, max(0.0, discharge_current), max(0.0, discharge_power),
        )

    async def set_limit(self, *, current_a: float | None = None, power_w: float | None = None) -> None:
        """A charging limit; a negative one (a discharge period of the schedule) allows no charging."""
        self._integrate()
        self._limit_current = None if current_a is None else max(0.0, current_a)
        self._limit_power = None if power_w is None else max(0.0, power_w)

    async def set_discharge_limit(self, *, current_a: float | None = None, power_w: float | None = None) -> None:
        self._integrate()
        self._limit_discharge_current = None if current_a is None else abs(current_a)
        self._limit_discharge_power = None if power_w is None else abs(power_w)

    async def set_setpoint(self, power_w: float | None) -> None:
        self._integrate()
        self._setpoint_w = power_w

    async def set_target(self, voltage_v: float, current_a: float) -> None:
        self._integrate()
        self._target = (max(0.0, voltage_v), max(0.0, current_a))

    async def present_values(self) -> Measurement:
        return self._output()

    async def read_meter(self, *, signed: bool = False) -> MeterReading:
        self._integrate()
        out = self._output()
        timestamp = self._wall_clock()
        signed_value = None
        if signed:
            data = json.dumps(
                {"evse": self._evse_id, "time": timestamp.isoformat(), "energy_wh": round(self._energy_wh, 3),
                 "export_wh": round(self._export_wh, 3)},
                separators=(",", ":"),
                sort_keys=True,
            ).encode()
            signature = self._key.sign(data, ec.ECDSA(hashes.SHA256()))
            blob = base64.b64encode(json.dumps({"data": base64.b64encode(data).decode(),
                                                "signature": base64.b64encode(signature).decode()}).encode()).decode()
            signed_value = SignedMeterValue(blob, "ECDSA-secp256r1-SHA256", "pnc-bridge-sim-json", self._public_key)
        return MeterReading(timestamp, self._energy_wh, self._export_wh, out.power_w, out.voltage_v, out.current_a, signed_value)

    # ------------------------------------------------------------------ simulation controls
    def plug_in(self, battery: EvBattery | None = None) -> None:
        """An EV arrives; with ``battery`` its state of charge and power limits are simulated."""
        self._integrate()
        self.battery = battery
        self._set_cp(CpState.B)

    def ev_ready(self) -> None:
        self._set_cp(CpState.C)

    def ev_pause(self) -> None:
        self._set_cp(CpState.B)

    def unplug(self) -> None:
        self._integrate()
        self.contactors_closed = False
        self._target = (0.0, 0.0)
        self._setpoint_w = None
        self.battery = None
        self._set_cp(CpState.A)

    def inject_fault(self) -> None:
        self._integrate()
        self.contactors_closed = False
        self._set_cp(CpState.F)

    def set_isolation(self, result: IsolationResult) -> None:
        self._isolation = result

    def demand(self, current_a: float, voltage_v: float | None = None) -> None:
        """What the simulated EV draws when charging (AC: current per phase)."""
        self._integrate()
        self._target = (voltage_v or self._nominal, current_a)

    # ------------------------------------------------------------------ internals
    def _set_cp(self, state: CpState) -> None:
        if state is self._cp:
            return
        self._cp = state
        for queue in list(self._listeners):
            queue.put_nowait(state)

    def _output(self) -> Measurement:
        if not self.contactors_closed or self._cp not in (CpState.C, CpState.D):
            return Measurement(0.0, 0.0)
        limits = self.limits()
        voltage = min(self._target[0] or self._nominal, limits.max_voltage_v)
        battery = self.battery
        if self._setpoint_w is not None and voltage > 0:
            charge_w = min(limits.max_power_w, limits.max_current_a * voltage)
            discharge_w = min(limits.max_discharge_power_w, limits.max_discharge_current_a * voltage)
            if battery is not None:
                charge_w = min(charge_w, battery.max_charge_power_w if battery.soc < 100.0 else 0.0)
                discharge_w = min(discharge_w, battery.max_discharge_power_w if battery.soc > 0.0 else 0.0)
            else:
                discharge_w = 0.0  # no battery model: the EV cannot be asked to give power back
            power = min(charge_w, max(-discharge_w, self._setpoint_w))
            return Measurement(voltage, power / voltage)
        current = min(self._target[1], limits.max_current_a)
        if voltage > 0 and voltage * current > limits.max_power_w:
            current = limits.max_power_w / voltage
        if battery is not None:
            if battery.soc >= 100.0:
                current = 0.0
            elif voltage > 0 and voltage * current > battery.max_charge_power_w:
                current = battery.max_charge_power_w / voltage
        return Measurement(voltage, current)

    def _integrate(self) -> None:
        now = self._clock()
        elapsed = max(0.0, now - self._last_integration)
        energy = self._output().power_w * elapsed / 3600.0
        if energy >= 0:
            self._energy_wh += energy
        else:
            self._export_wh -= energy
        if self.battery is not None:
            self.battery.add_energy(energy)
        self._last_integration = now
