"""A ``CfdiDocument`` as a CFDI 4.0 (satcfdi), sealed with the issuer's CSD and checked before it leaves.

The amounts are the core's, to the cent: each concepto gets its Base and IVA explicitly, so satcfdi only adds
them up (its own per-concepto rounding is not used).
"""

from __future__ import annotations

from satcfdi.create.cfd import cfdi40

from comanda.services.cfdi.documents import CfdiDocument, Concept
from comanda.services.cfdi.taxes import IVA_RATE
from integrations.cfdi.csd import load_signer
from integrations.cfdi.validation import CfdiInvalid, check_cfdi, stamped_totals

IVA, RATE, NOT_EXPORTED, CURRENCY = "002", "Tasa", "01", "MXN"
TAXED, NOT_TAXED = "02", "01"  # ObjetoImp


def _concepto(concept: Concept) -> cfdi40.Concepto:
    amount = concept.amount
    taxes = (
        cfdi40.Impuestos(
            traslados=cfdi40.Traslado(
                impuesto=IVA,
                tipo_factor=RATE,
                tasa_o_cuota=IVA_RATE,
                base=amount.base,
                importe=amount.tax,
            )
        )
        if amount.base > 0
        else None
    )
    return cfdi40.Concepto(
        clave_prod_serv=concept.sat_prod_serv,
        cantidad=amount.quantity,
        clave_unidad=concept.sat_unit,
        descripcion=concept.description,
        valor_unitario=amount.unit_value,
        no_identificacion=concept.sku,
        impuestos=taxes,
        objeto_imp=TAXED if taxes else NOT_TAXED,
    )


def comprobante(document: CfdiDocument) -> cfdi40.Comprobante:
    issuer, receiver, info = document.issuer, document.receiver, document.global_info
    return cfdi40.Comprobante(
        emisor=cfdi40.Emisor(rfc=issuer.rfc, nombre=issuer.name, regimen_fiscal=issuer.tax_regime),
        lugar_expedicion=document.expedition_postal_code,
        receptor=cfdi40.Receptor(
            rfc=receiver.rfc,
            nombre=receiver.name,
            domicilio_fiscal_receptor=receiver.postal_code,
            regimen_fiscal_receptor=receiver.tax_regime,
            uso_cfdi=receiver.cfdi_use,
        ),
        conceptos=[_concepto(c) for c in document.concepts],
        moneda=CURRENCY,
        tipo_de_comprobante=document.kind,
        exportacion=NOT_EXPORTED,
        serie=document.series,
        folio=document.folio,
        forma_pago=document.payment_form,
        metodo_pago=document.payment_method,
        fecha=document.issued_at,
        informacion_global=cfdi40.InformacionGlobal(info.periodicity, info.months, info.year) if info else None,
        cfdi_relacionados=cfdi40.CfdiRelacionados(document.relation_type, [document.related_uuid])
        if document.related_uuid
        else None,
    )


def sealed_xml(document: CfdiDocument) -> bytes:
    """The CFDI sealed with the issuer's CSD, schema-valid, its seal verified and its totals the core's."""
    cfdi = comprobante(document)
    cfdi.sign(load_signer(document.issuer.csd, document.issuer.rfc))
    xml = cfdi.xml_bytes()
    check_cfdi(xml)
    if stamped_totals(xml) != document.totals:
        raise CfdiInvalid(f"the CFDI's totals {stamped_totals(xml)} differ from the sale's {document.totals}")
    return xml
