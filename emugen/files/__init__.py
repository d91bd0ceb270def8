"""How emugen writes files: the lowest layer above the vocabulary and the errors.

`atomic` replaces a file whole (a reader sees the old version or the new one); `storage` names
the fsspec protocol of a storage root (the landing zone's) and refuses an unknown one; `target`
decides whether a path a user gave may be written at all; `write` writes such a target (staged
and renamed, or streamed to stdout) so that a failure leaves what was there unchanged.
May import only vocabulary, errors and contract.
"""
