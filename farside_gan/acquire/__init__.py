"""The acquire stage: archives and transfers, JSOC, Fido, frame records, the fetch check."""
