"""The placement stack, one stage a file, in the order the search runs them (cheap to expensive):

1. ``static_filter``  - feasibility on time-free facts, once per node class;
2. ``port_check``     - facility-port bandwidth and VLAN tags over the window;
3. ``site_summary``   - tier 1: sites whose summed free capacity could hold a component (upper bound);
4. ``host_fit``       - tier 2: per-host free capacity over the whole window;
5. ``rankers``        - policy plugins ordering sites and hosts and scoring windows;
6. ``select``         - the selector: sites per component, packing, link routes (backtracking).

Each stage declares ``READS`` (what state it depends on), as Nomad's iterators and Kubernetes plugins
make their inputs explicit; rejections use the typed ``Reason`` of ``base``.
"""
