from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from msgd.web import admin_preview, admin_resend, api, api_dlr, api_resend
from msgd.web import admin_views as views


def staff(view):  # type: ignore[no-untyped-def]
    """Login first (the admin's own check); each view then checks its permission (access.require)."""
    return admin.site.admin_view(view)


urlpatterns = [
    path("api/v1/events", api.events, name="api-events"),
    path("api/v1/messages", api.messages, name="api-messages"),
    path("api/v1/messages/<str:message_id>", api.message_detail, name="api-message"),
    path("api/v1/messages/<str:message_id>/resend", api_resend.resend_one, name="api-message-resend"),
    path("api/v1/resend", api_resend.resend_many, name="api-resend"),
    path("api/v1/dlr/<int:settings_id>/<str:secret>", api_dlr.receive, name="api-dlr"),
    path("healthz", api.healthz, name="healthz"),
    path("readyz", api.readyz, name="readyz"),
    path("admin/tools/templates/<int:template_id>/preview/", staff(admin_preview.template_preview),
         name="msgd-template-preview"),
    path("admin/tools/templates/preview/", staff(admin_preview.draft_preview), name="msgd-template-draft-preview"),
    path("admin/tools/test-message/", staff(views.test_message), name="msgd-test-message"),
    path("admin/tools/manual-send/", staff(views.manual_send), name="msgd-manual-send"),
    path("admin/tools/events/<str:event_id>/", staff(views.event_status), name="msgd-event-status"),
    path("admin/tools/messages/<uuid:message_id>/resend/", staff(admin_resend.resend_one), name="msgd-resend-one"),
    path("admin/tools/parking/", staff(views.parking), name="msgd-parking"),
    path("admin/", admin.site.urls),
    path("", RedirectView.as_view(url="/admin/", permanent=False)),  # the site is the admin
]

# JSON errors under /api/ (and /healthz, /readyz); Django's pages for the admin.
handler400 = "msgd.web.api_http.error_400"
handler403 = "msgd.web.api_http.error_403"
handler404 = "msgd.web.api_http.error_404"
handler500 = "msgd.web.api_http.error_500"
