"""The SQLite store. Everything that reads or writes the database lives in this package."""

from storage.db import StorageError, Store
from storage.models import (
           Batch,
           BatchState,
           Delivery,
           OutboxItem,
           PartPlan,
           PartState,
           Reply,
           RequestPart,
           RequestState,
           SendRequest,
)

__all__ = ["Store", "StorageError", "Batch", "BatchState", "Delivery", "OutboxItem", "Reply", "RequestState", "SendRequest",
           "PartPlan", "PartState", "RequestPart"]
