"""Find-slot: the calendar index a replica keeps (cache and snapshot), the search over it, its answers
as wire models, long searches as jobs, and Placement-style allocation candidates. Nothing here books."""
