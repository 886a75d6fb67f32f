"""Devices: HardwareSpec and the bundled, sourced catalog."""

from .catalog import hardware_names, list_hardware, load_hardware
from .spec import DTYPES, HardwareSpec, Interconnect

__all__ = ["DTYPES", "HardwareSpec", "Interconnect", "hardware_names", "list_hardware", "load_hardware"]
