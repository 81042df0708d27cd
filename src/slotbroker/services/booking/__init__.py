"""Booking: everything that takes or gives back capacity. Claims (the one capacity check), a window as
claim items, alternates and moving a booking onto them, offers (holds that expire), allocation requests
(a window claimable by id), leases with their events, re-hosting, iCalendar, and quotas."""
