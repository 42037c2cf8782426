"""Object storage (adapter): each center's S3 store, and real copies between centers' stores, through rclone.

Next to the engines: a center's agent uses it, so it knows nothing of the server's store, loop or scheduler.
"""

from zhisuan.storage.rclone import RcloneMissing, S3Server, S3Store, env_for, rclone_path
from zhisuan.storage.run import Progress, StorageError, TransferCancelled, TransferFailed
from zhisuan.storage.transfer import ObjectInfo, Timeouts, copy, listing, put, remove, verify

__all__ = ["ObjectInfo", "Progress", "RcloneMissing", "S3Server", "S3Store", "StorageError", "Timeouts",
           "TransferCancelled", "TransferFailed", "copy", "env_for", "listing", "put", "rclone_path", "remove",
           "verify"]
