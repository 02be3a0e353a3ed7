from django.urls import path

from agent.catalog import apis, views

page_patterns = [
    path("catalog/", views.CatalogView.as_view(), name="catalog"),
    path("catalog/export.json", views.CatalogExportView.as_view(), name="catalog_export"),
]

api_patterns = [
    path("catalog/", apis.CatalogApi.as_view(), name="catalog"),
    path("catalog/offers/", apis.OfferCreateApi.as_view(), name="catalog_offer_create"),
    path("catalog/offers/<int:offer_id>/", apis.OfferDetailApi.as_view(), name="catalog_offer_detail"),
    path("catalog/faq/", apis.FaqCreateApi.as_view(), name="catalog_faq_create"),
    path("catalog/faq/<int:faq_id>/", apis.FaqDetailApi.as_view(), name="catalog_faq_detail"),
    path("catalog/release/", apis.CatalogReleaseApi.as_view(), name="catalog_release"),
    path("catalog/versions/", apis.CatalogVersionListApi.as_view(), name="catalog_versions"),
    path("catalog/stale-examples/", apis.StaleExampleListApi.as_view(), name="catalog_stale_examples"),
]
