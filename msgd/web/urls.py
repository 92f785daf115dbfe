from django.contrib import admin
from django.urls import path

from msgd.web import admin_views as views
from msgd.web import api


def staff(view):  # type: ignore[no-untyped-def]
    return admin.site.admin_view(view)


urlpatterns = [
    path("api/v1/events", api.events, name="api-events"),
    path("api/v1/messages", api.messages, name="api-messages"),
    path("api/v1/messages/<str:message_id>", api.message_detail, name="api-message"),
    path("healthz", api.healthz, name="healthz"),
    path("readyz", api.readyz, name="readyz"),
    path("admin/tools/templates/<int:template_id>/preview/", staff(views.template_preview),
         name="msgd-template-preview"),
    path("admin/tools/test-message/", staff(views.test_message), name="msgd-test-message"),
    path("admin/tools/manual-send/", staff(views.manual_send), name="msgd-manual-send"),
    path("admin/tools/events/<str:event_id>/", staff(views.event_status), name="msgd-event-status"),
    path("admin/tools/parking/", staff(views.parking), name="msgd-parking"),
    path("admin/", admin.site.urls),
]

# JSON errors under /api/ (and /healthz, /readyz); Django's pages for the admin.
handler400 = "msgd.web.api_http.error_400"
handler403 = "msgd.web.api_http.error_403"
handler404 = "msgd.web.api_http.error_404"
handler500 = "msgd.web.api_http.error_500"
