"""ERP connectors: SAP S/4HANA, Oracle Fusion, Dynamics 365 F&O and Business Central.

Each connector pushes purchase orders idempotently (looked up by our order number first) and
pulls status updates, receipts, vendors and items changed after a watermark. See docs/erp.md.
"""
