"""CFDI 4.0 invoicing: the pure core (no Rasa, no satcfdi, no vendor SDK).

``fiscal`` checks a customer's fiscal data field by field, ``catalogs`` holds the SAT catalogs and the chat's
offer lists, ``taxes`` splits IVA-included prices to the cent, ``invoicing`` issues a customer's invoice,
``global_invoices`` the factura global, ``credit_notes`` the Egreso for a refund, ``lifecycle`` stamping and
cancellation, ``links`` and ``delivery`` hand the documents over. Sealing and stamping happen behind the
``documents.CfdiIssuer`` protocol, which ``integrations.cfdi`` implements.
"""
