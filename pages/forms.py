"""The public pages' query parameters, validated: a bad one is a 400, never a 500."""

from django import forms

from ranking.search import MAX_QUERY_LENGTH


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=MAX_QUERY_LENGTH, strip=True)

    def query(self) -> str:
        return self.cleaned_data.get("q", "") if self.is_valid() else ""


class ApiForm(forms.Form):
    """``/api/papers?q=&date=YYYY-MM-DD&limit=N``."""

    q = forms.CharField(required=False, max_length=MAX_QUERY_LENGTH, strip=True)
    date = forms.DateField(required=False, input_formats=["%Y-%m-%d"])
    limit = forms.IntegerField(required=False, min_value=1, max_value=100)

    def clean_limit(self):
        return self.cleaned_data.get("limit") or 20

    def errors_json(self) -> dict:
        fields = {name: [e["message"] for e in errors] for name, errors in self.errors.get_json_data().items()}
        return {"error": "bad parameter: " + ", ".join(sorted(fields)), "fields": fields}
