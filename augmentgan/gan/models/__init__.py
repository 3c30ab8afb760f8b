"""Class-conditional generators and discriminators."""
