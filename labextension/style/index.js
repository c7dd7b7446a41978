import './base.css';
import './requests.css';
import './browse.css';
import './admin.css';
