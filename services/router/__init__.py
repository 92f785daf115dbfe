"""Router: validate billing events and match them to templates."""
