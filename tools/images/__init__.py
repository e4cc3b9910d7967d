"""The assignment's images, built and measured with whatever container engine this machine has."""
