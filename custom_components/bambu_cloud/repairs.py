"""Repair flows: a token about to expire leads the user to reauthentication."""

from __future__ import annotations

from homeassistant import data_entry_flow
from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.core import HomeAssistant


class TokenExpiringRepairFlow(ConfirmRepairFlow):
    """Confirming the issue starts the entry's reauthentication flow."""

    def __init__(self, entry_id: str) -> None:
        """Remember which entry needs a new token."""
        super().__init__()
        self._entry_id = entry_id

    async def async_step_confirm(
        self, user_input: dict[str, str] | None = None
    ) -> data_entry_flow.FlowResult:
        """Start reauth once the user confirms."""
        if user_input is not None:
            if entry := self.hass.config_entries.async_get_entry(self._entry_id):
                entry.async_start_reauth(self.hass)
            return self.async_create_entry(data={})
        return await super().async_step_confirm(user_input)


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """Create the flow that fixes an issue of this integration."""
    entry_id = str((data or {}).get("entry_id", ""))
    return TokenExpiringRepairFlow(entry_id)
