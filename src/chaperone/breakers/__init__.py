"""Circuit breakers shared by every process on the store: ``circuit_breaker(...)``."""

from chaperone._exceptions import CircuitOpenError
from chaperone.breakers._breaker import CircuitBreaker, circuit_breaker
from chaperone.breakers._state import BreakerPolicy, CircuitState

__all__ = ["BreakerPolicy", "CircuitBreaker", "CircuitOpenError", "CircuitState", "circuit_breaker"]
