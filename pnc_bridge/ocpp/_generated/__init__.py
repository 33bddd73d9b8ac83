"""Generated OCPP models; see pnc_bridge/ocpp/_codegen.py. Do not edit."""
