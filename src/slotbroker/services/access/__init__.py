"""Access: API tokens bound to a project and a role."""
