"""``/api/v1/clusters/{id}/recommendation``, ``/api/v1/clusters/{id}/jobs``, ``/api/v1/jobs`` and
``/api/v1/jobs/{id}`` (with ``approve`` and ``cancel``)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import generics, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from clusters.selectors import cluster_for_user
from spotopt.errors import NotFound

from . import selectors
from .filters import JobFilter
from .models import OptimizationJob
from .serializers import (
    JobCreateSerializer,
    JobSerializer,
    JobSummarySerializer,
    NotificationSettingsSerializer,
    NotificationSettingsUpdateSerializer,
    RecommendationSerializer,
)
from .services import jobs, notifications
from .services.recommendations import recommendation_for


class RecommendationView(APIView):
    """The cluster's current recommendation (planned now, or the cached plan while the snapshot is unchanged)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: RecommendationSerializer})
    def get(self, request, pk):
        cluster = cluster_for_user(request.user, pk)
        refresh = request.query_params.get("refresh") in ("1", "true")
        return Response(RecommendationSerializer(recommendation_for(cluster=cluster, refresh=refresh)).data)


class ClusterJobsView(generics.ListAPIView):
    """GET: the cluster's jobs, newest first. POST: start a manual job (``{"dry_run": bool}``)."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = JobSummarySerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return OptimizationJob.objects.none()
        cluster = cluster_for_user(self.request.user, self.kwargs["pk"])
        return selectors.jobs_for_user(self.request.user).filter(cluster=cluster)

    @extend_schema(request=JobCreateSerializer, responses={201: JobSerializer})
    def post(self, request, pk):
        cluster = cluster_for_user(request.user, pk)
        data = JobCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        job = jobs.job_create(
            cluster=cluster,
            trigger="manual",
            dry_run=data.validated_data["dry_run"],
            actor=request.user,
            plan_in_background=True,
        )
        return Response(JobSerializer(selectors.get_job(request.user, job.pk)).data, status=status.HTTP_201_CREATED)


class JobListView(generics.ListAPIView):
    """Jobs across the caller's clusters, newest first; filters: state, trigger, cluster, active, dry_run."""

    permission_classes = [permissions.IsAuthenticated]
    serializer_class = JobSummarySerializer
    filterset_class = JobFilter

    def get_queryset(self):
        return selectors.jobs_for_user(self.request.user)


class JobDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: JobSerializer})
    def get(self, request, pk):
        return Response(JobSerializer(selectors.get_job(request.user, pk)).data)


class JobApproveView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: JobSerializer})
    def post(self, request, pk):
        job = jobs.job_approve(job=selectors.get_job(request.user, pk), actor=request.user)
        return Response(JobSerializer(selectors.get_job(request.user, job.pk)).data)


class JobCancelView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: JobSerializer})
    def post(self, request, pk):
        job = jobs.job_cancel(job=selectors.get_job(request.user, pk), actor=request.user)
        return Response(JobSerializer(selectors.get_job(request.user, job.pk)).data)


def _organization(user):
    if user.organization_id is None:
        raise NotFound("Notification settings belong to an organization; this user has none.", code="no_organization")
    return user.organization


class NotificationSettingsView(APIView):
    """The caller's organization's job notifications: a Slack-compatible webhook told when a job awaits approval,
    fails or is rolled back. The URL is answered masked only."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={200: NotificationSettingsSerializer})
    def get(self, request):
        row = notifications.notification_settings_get(organization=_organization(request.user))
        return Response(NotificationSettingsSerializer(row).data)

    @extend_schema(request=NotificationSettingsUpdateSerializer, responses={200: NotificationSettingsSerializer})
    def put(self, request):
        organization = _organization(request.user)
        data = NotificationSettingsUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = notifications.notification_settings_update(
            organization=organization, webhook_url=data.validated_data["webhook_url"], actor=request.user
        )
        return Response(NotificationSettingsSerializer(row).data)
