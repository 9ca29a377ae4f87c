"""BWC Evidence: body-worn-camera evidence service."""
