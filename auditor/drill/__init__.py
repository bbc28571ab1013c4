"""Non-disruptive failover drills: restore the protected VMs' disks on the peer cluster in an isolated namespace,
boot copies of the VMs there, measure RTO and RPO from watch events, record the evidence, and remove every trace.

Drills are the only code in drauditor that writes to a cluster; every write goes through ``guard.GuardedApi``.
"""
