"""Purchase orders printed: ``pdf.WeasyPrinter`` implements the core's ``PurchaseOrderPrinter``."""
